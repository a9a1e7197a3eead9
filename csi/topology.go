package csi

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
)

// TopologyKey is the driver's one topology key: its value, a segment, is
// a VDA location. A node reports its location (Config.Location); a volume
// created with accessibility requirements has its controllers placed on
// CNs of the requirement's locations and is accessible from the nodes of
// the locations its controllers are in.
const TopologyKey = "topology.vda.io/location"

// labelValue is what Kubernetes takes as a label value, which a segment
// becomes on the node object.
var labelValue = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$`)

// ValidateLocation checks a node's location for use as a topology segment:
// a Kubernetes label value (at most 63 characters of letters, digits,
// '-', '_' and '.', starting and ending with a letter or digit).
func ValidateLocation(loc string) error {
	if !labelValue.MatchString(loc) {
		return fmt.Errorf("location %q is not a Kubernetes label value (at most 63 of [A-Za-z0-9_.-], starting and ending alphanumeric)", loc)
	}
	return nil
}

// segmentLocation is the location of a topology segment: ok is false if
// the segment has no TopologyKey (or has keys not this driver's).
func segmentLocation(t *csipb.Topology) (string, error) {
	loc, ok := t.GetSegments()[TopologyKey]
	if !ok || len(t.GetSegments()) != 1 {
		return "", status.Errorf(codes.InvalidArgument, "topology %v: want exactly the segment %s", t.GetSegments(), TopologyKey)
	}
	if err := ValidateLocation(loc); err != nil {
		return "", status.Errorf(codes.InvalidArgument, "topology: %v", err)
	}
	return loc, nil
}

// locationChoices turns accessibility requirements into the CN location
// constraints to try in order: each preferred segment alone, then every
// requisite segment; without requisite segments, finally no constraint.
// No requirements: one choice, no constraint.
func locationChoices(r *csipb.TopologyRequirement) ([][]string, error) {
	var requisite []string
	for _, t := range r.GetRequisite() {
		loc, err := segmentLocation(t)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(requisite, loc) {
			requisite = append(requisite, loc)
		}
	}
	if len(requisite) > 16 {
		return nil, status.Errorf(codes.InvalidArgument, "%d requisite locations: at most 16", len(requisite))
	}
	var choices [][]string
	for _, t := range r.GetPreferred() {
		loc, err := segmentLocation(t)
		if err != nil {
			return nil, err
		}
		if len(requisite) > 0 && !slices.Contains(requisite, loc) {
			continue // the spec has preferred within requisite
		}
		if !slices.ContainsFunc(choices, func(c []string) bool { return c[0] == loc }) {
			choices = append(choices, []string{loc})
		}
	}
	if len(requisite) > 0 {
		if len(choices) == 0 || len(requisite) > 1 {
			choices = append(choices, requisite)
		}
	} else {
		choices = append(choices, nil)
	}
	return choices, nil
}

// topologyOf is the accessible topology of a DA's volumes: a segment per
// location of its controllers' CNs, or nil (accessible from everywhere)
// for a DA created without a CN location constraint.
func (d *Driver) topologyOf(ctx context.Context, da *pb.DaMsg) ([]*csipb.Topology, error) {
	if len(da.GetCnLocations()) == 0 {
		return nil, nil
	}
	var locs []string
	for _, c := range da.GetCntlrList() {
		cn, err := d.cfg.Portal.GetCn(ctx, &pb.GetCnRequest{CnName: c.GetCnName()})
		if err != nil {
			return nil, portalErr(err, "controller node %s of DA %s", c.GetCnName(), da.GetDaName())
		}
		if loc := cn.GetCnMsg().GetLocation(); !slices.Contains(locs, loc) {
			locs = append(locs, loc)
		}
	}
	var top []*csipb.Topology
	for _, l := range locs {
		top = append(top, &csipb.Topology{Segments: map[string]string{TopologyKey: l}})
	}
	return top, nil
}

// topologyFits reports whether a volume of accessible topology top meets
// the CN location choices (the last is the widest).
func topologyFits(top []*csipb.Topology, choices [][]string) bool {
	want := choices[len(choices)-1]
	if len(want) == 0 {
		return true
	}
	if top == nil {
		return true // accessible from everywhere
	}
	for _, t := range top {
		if slices.Contains(want, t.GetSegments()[TopologyKey]) {
			return true
		}
	}
	return false
}

// GetCapacity is the free space of the PDs a volume could use (of the DNs
// in the dnLocations parameter, if given); for a topology segment, none
// unless a CN of that location is online and not failed (a volume for
// the segment needs a controller there).
func (d *Driver) GetCapacity(ctx context.Context, req *csipb.GetCapacityRequest) (*csipb.GetCapacityResponse, error) {
	for _, c := range req.GetVolumeCapabilities() {
		if capProblem(c) != "" {
			return &csipb.GetCapacityResponse{}, nil
		}
	}
	params, err := parseParams(req.GetParameters())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	p := d.cfg.Portal
	if t := req.GetAccessibleTopology(); t != nil {
		loc, err := segmentLocation(t)
		if err != nil {
			return nil, err
		}
		found := false
		err = pages(func(page *pb.Page) (string, error) {
			got, err := p.ListCn(ctx, &pb.ListCnRequest{Page: page})
			for _, cn := range got.GetCnMsgList() {
				if cn.GetLocation() == loc && !cn.GetOffline() && cn.GetStatus().GetHealth() != "failed" {
					found = true
				}
			}
			return got.GetNextPageToken(), err
		})
		if err != nil {
			return nil, portalErr(err, "list CNs")
		}
		if !found {
			return &csipb.GetCapacityResponse{}, nil
		}
	}
	if len(params.dnLocations) == 0 {
		sum, err := p.GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
		if err != nil {
			return nil, portalErr(err, "cluster summary")
		}
		return &csipb.GetCapacityResponse{AvailableCapacity: int64(sum.GetFreeBytes())}, nil
	}
	dns := map[string]bool{}
	err = pages(func(page *pb.Page) (string, error) {
		got, err := p.ListDn(ctx, &pb.ListDnRequest{Page: page})
		for _, dn := range got.GetDnMsgList() {
			if slices.Contains(params.dnLocations, dn.GetLocation()) && !dn.GetOffline() && dn.GetStatus().GetHealth() != "failed" {
				dns[dn.GetDnName()] = true
			}
		}
		return got.GetNextPageToken(), err
	})
	if err != nil {
		return nil, portalErr(err, "list DNs")
	}
	var free uint64
	err = pages(func(page *pb.Page) (string, error) {
		got, err := p.ListPd(ctx, &pb.ListPdRequest{Page: page})
		for _, pd := range got.GetPdMsgList() {
			if dns[pd.GetDnName()] && !pd.GetOffline() {
				free += pd.GetFreeBytes()
			}
		}
		return got.GetNextPageToken(), err
	})
	if err != nil {
		return nil, portalErr(err, "list PDs")
	}
	return &csipb.GetCapacityResponse{AvailableCapacity: int64(free)}, nil
}

// pages calls list with each page token until it returns "" or an error.
func pages(list func(*pb.Page) (string, error)) error {
	token := ""
	for {
		next, err := list(&pb.Page{PageToken: token})
		if err != nil || next == "" {
			return err
		}
		token = next
	}
}
