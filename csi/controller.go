package csi

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
)

// Publish context keys (ControllerPublishVolume to NodeStageVolume).
const (
	ctxNQN       = "nqn"       // the exporter's subsystem NQN
	ctxListeners = "listeners" // JSON array of every controller listener
)

// Listener is one controller's NVMe-oF listener of an exporter.
type Listener struct {
	TrType  string `json:"trtype"`
	TrAddr  string `json:"traddr"`
	AdrFam  string `json:"adrfam,omitempty"`
	TrSvcID string `json:"trsvcid"`
}

const roundBytes = 1 << 20 // volumes are whole MiB

const tokenPrefix = "vda1:" // of ListVolumes' tokens

var controllerCaps = []csipb.ControllerServiceCapability_RPC_Type{
	csipb.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csipb.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
	csipb.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csipb.ControllerServiceCapability_RPC_GET_CAPACITY,
	csipb.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	csipb.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

// ControllerGetCapabilities lists what the controller implements.
func (d *Driver) ControllerGetCapabilities(context.Context, *csipb.ControllerGetCapabilitiesRequest) (*csipb.ControllerGetCapabilitiesResponse, error) {
	var caps []*csipb.ControllerServiceCapability
	for _, c := range controllerCaps {
		caps = append(caps, &csipb.ControllerServiceCapability{Type: &csipb.ControllerServiceCapability_Rpc{
			Rpc: &csipb.ControllerServiceCapability_RPC{Type: c}}})
	}
	return &csipb.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// checkCaps refuses capabilities the driver cannot serve.
func checkCaps(caps []*csipb.VolumeCapability) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	for _, c := range caps {
		if reason := capProblem(c); reason != "" {
			return status.Error(codes.InvalidArgument, reason)
		}
	}
	return nil
}

// capProblem says why c cannot be served, or "".
func capProblem(c *csipb.VolumeCapability) string {
	if c == nil || c.GetAccessMode() == nil {
		return "volume capability without access mode"
	}
	block := c.GetBlock() != nil
	switch {
	case block:
	case c.GetMount() != nil:
		switch c.GetMount().GetFsType() {
		case "", "ext4", "xfs":
		default:
			return "fs_type " + c.GetMount().GetFsType() + " not supported (ext4, xfs)"
		}
	default:
		return "volume capability without access type (block or mount)"
	}
	switch m := c.GetAccessMode().GetMode(); m {
	case csipb.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, csipb.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csipb.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER, csipb.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
	case csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		if !block {
			return "access mode " + m.String() + " needs a block volume (a filesystem cannot be shared between nodes)"
		}
	default:
		return "access mode " + m.String() + " not supported"
	}
	return ""
}

func multiNode(c *csipb.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csipb.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, csipb.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

func roundUp(a, m int64) int64 { return (a + m - 1) / m * m }

// volumeBytes is the size for a capacity range: required rounded up to a
// MiB (or the default), within limit.
func (d *Driver) volumeBytes(r *csipb.CapacityRange) (int64, error) {
	req, lim := r.GetRequiredBytes(), r.GetLimitBytes()
	if req < 0 || lim < 0 {
		return 0, status.Error(codes.InvalidArgument, "negative capacity")
	}
	if lim > 0 && req > lim {
		return 0, status.Errorf(codes.InvalidArgument, "required_bytes %d exceeds limit_bytes %d", req, lim)
	}
	size := req
	if size == 0 {
		size = d.cfg.DefaultVolumeBytes
		if lim > 0 && size > lim {
			size = lim
		}
	}
	size = roundUp(size, roundBytes)
	if lim > 0 && size > lim {
		size = roundUp(max(req, 1), 8192) // the smallest step a DA takes
	}
	if lim > 0 && size > lim {
		return 0, status.Errorf(codes.OutOfRange, "no size in %d..%d is a multiple of 8192 bytes", req, lim)
	}
	return size, nil
}

func description(name string) string { return descPrefix + name }

func volumeOf(da *pb.DaMsg) *csipb.Volume {
	return &csipb.Volume{VolumeId: da.GetDaName(), CapacityBytes: int64(da.GetDaSize())}
}

// CreateVolume creates a DA for the volume, or returns the one an earlier
// call with the same name created.
func (d *Driver) CreateVolume(ctx context.Context, req *csipb.CreateVolumeRequest) (*csipb.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name missing")
	}
	if err := checkCaps(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	if req.GetVolumeContentSource() != nil {
		return nil, status.Error(codes.InvalidArgument, "volume content sources (snapshots, clones) are not supported")
	}
	params, err := parseParams(req.GetParameters())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	size, err := d.volumeBytes(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	name := VolumeName(req.GetName())
	unlock, err := d.locks.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := d.cfg.Portal
	got, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: name})
	if err == nil {
		da := got.GetDaMsg()
		if da.GetDescription() != description(req.GetName()) {
			return nil, status.Errorf(codes.AlreadyExists, "DA %s exists and is not volume %q (description %q)", name, req.GetName(), da.GetDescription())
		}
		r := req.GetCapacityRange()
		if int64(da.GetDaSize()) < r.GetRequiredBytes() || r.GetLimitBytes() > 0 && int64(da.GetDaSize()) > r.GetLimitBytes() {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with %d bytes, outside the capacity range asked", req.GetName(), da.GetDaSize())
		}
		return &csipb.CreateVolumeResponse{Volume: volumeOf(da)}, nil
	}
	if !isNotFound(err) {
		return nil, portalErr(err, "get DA %s", name)
	}
	physical := roundUp(int64(float64(size)*params.physicalFactor), 8192)
	created, err := p.CreateDa(ctx, &pb.CreateDaRequest{DaName: name, CntlrCnt: params.cntlrCnt, DaSize: uint64(size),
		PhysicalSize: uint64(physical), DaConf: params.daConf(), Description: description(req.GetName())})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.FailedPrecondition {
			// Not enough room or nodes: the CO may retry elsewhere/later.
			return nil, status.Errorf(codes.ResourceExhausted, "create DA %s: %s", name, status.Convert(err).Message())
		}
		return nil, portalErr(err, "create DA %s", name)
	}
	da := created.GetDaMsg()
	if params.qos != nil {
		if _, err := p.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: name, Qos: params.qos}); err != nil {
			// A volume without the limits asked is not what was asked.
			_, _ = p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: name})
			return nil, portalErr(err, "set QoS of DA %s", name)
		}
	}
	return &csipb.CreateVolumeResponse{Volume: volumeOf(da)}, nil
}

// checkVolumeID refuses an ID this driver cannot have made, as NotFound.
func checkVolumeID(id string) error {
	if id == "" {
		return status.Error(codes.InvalidArgument, "volume ID missing")
	}
	if !strings.HasPrefix(id, daPrefix) || len(id) != len(daPrefix)+32 {
		return status.Errorf(codes.NotFound, "volume %q does not exist (not a VDA CSI volume ID)", id)
	}
	return nil
}

// expName is the name of the exporter of volume id.
func expName(id string) string { return id }

// DeleteVolume deletes the volume's exporter, then its DA; a volume gone
// already is deleted.
func (d *Driver) DeleteVolume(ctx context.Context, req *csipb.DeleteVolumeRequest) (*csipb.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	if checkVolumeID(req.GetVolumeId()) != nil {
		return &csipb.DeleteVolumeResponse{}, nil
	}
	name := req.GetVolumeId()
	unlock, err := d.locks.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := d.cfg.Portal.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: name, ExpName: expName(name)}); err != nil && !isNotFound(err) {
		return nil, portalErr(err, "delete exporter of %s", name)
	}
	if _, err := d.cfg.Portal.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: name}); err != nil && !isNotFound(err) {
		return nil, portalErr(err, "delete DA %s", name)
	}
	return &csipb.DeleteVolumeResponse{}, nil
}

// ControllerPublishVolume admits the node's host NQN to the volume's
// exporter (created on the first publish).
func (d *Driver) ControllerPublishVolume(ctx context.Context, req *csipb.ControllerPublishVolumeRequest) (*csipb.ControllerPublishVolumeResponse, error) {
	id, node := req.GetVolumeId(), req.GetNodeId()
	if id == "" || node == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID or node ID missing")
	}
	if err := checkCaps([]*csipb.VolumeCapability{req.GetVolumeCapability()}); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	if err := validateHostNQN(node); err != nil {
		return nil, status.Errorf(codes.NotFound, "node %q: %v", node, err)
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := d.cfg.Portal
	if _, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: id}); err != nil {
		return nil, portalErr(err, "volume %s", id)
	}
	var exp *pb.ExpMsg
	got, err := p.GetExp(ctx, &pb.GetExpRequest{DaName: id, ExpName: expName(id)})
	switch {
	case isNotFound(err):
		created, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: id, ExpName: expName(id), InitiatorNqn: node,
			Description: "csi.vda.io"})
		if err != nil {
			return nil, portalErr(err, "create exporter of %s", id)
		}
		exp = created.GetExpMsg()
	case err != nil:
		return nil, portalErr(err, "get exporter of %s", id)
	default:
		exp = got.GetExpMsg()
		if !slices.Contains(exp.GetHostNqns(), node) {
			if !multiNode(req.GetVolumeCapability()) && len(exp.GetHostNqns()) > 0 {
				return nil, status.Errorf(codes.FailedPrecondition, "volume %s is published to %v already and its access mode is single-node",
					id, exp.GetHostNqns())
			}
			mod, err := p.ModifyExp(ctx, &pb.ModifyExpRequest{DaName: id, ExpName: expName(id), AddHostNqns: []string{node}})
			if err != nil {
				return nil, portalErr(err, "add host %s to the exporter of %s", node, id)
			}
			exp = mod.GetExpMsg()
		}
	}
	var ls []Listener
	for _, es := range exp.GetEsMsgList() {
		var l Listener
		if err := json.Unmarshal([]byte(es.GetCnListenerConf()), &l); err != nil {
			return nil, status.Errorf(codes.Internal, "exporter of %s: listener %q: %v", id, es.GetCnListenerConf(), err)
		}
		ls = append(ls, l)
	}
	lj, _ := json.Marshal(ls)
	return &csipb.ControllerPublishVolumeResponse{PublishContext: map[string]string{ctxNQN: exp.GetExpNqn(), ctxListeners: string(lj)}}, nil
}

// ControllerUnpublishVolume removes the node's host NQN from the volume's
// exporter, and deletes the exporter with its last host.
func (d *Driver) ControllerUnpublishVolume(ctx context.Context, req *csipb.ControllerUnpublishVolumeRequest) (*csipb.ControllerUnpublishVolumeResponse, error) {
	id, node := req.GetVolumeId(), req.GetNodeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	if checkVolumeID(id) != nil {
		return &csipb.ControllerUnpublishVolumeResponse{}, nil
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := d.cfg.Portal
	got, err := p.GetExp(ctx, &pb.GetExpRequest{DaName: id, ExpName: expName(id)})
	if isNotFound(err) {
		return &csipb.ControllerUnpublishVolumeResponse{}, nil
	}
	if err != nil {
		return nil, portalErr(err, "get exporter of %s", id)
	}
	hosts := got.GetExpMsg().GetHostNqns()
	switch {
	case node != "" && !slices.Contains(hosts, node):
	case node == "" || len(hosts) == 1:
		// Every node, or the last one: the exporter goes.
		if _, err := p.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: id, ExpName: expName(id)}); err != nil && !isNotFound(err) {
			return nil, portalErr(err, "delete exporter of %s", id)
		}
	default:
		if _, err := p.ModifyExp(ctx, &pb.ModifyExpRequest{DaName: id, ExpName: expName(id), RemoveHostNqns: []string{node}}); err != nil {
			return nil, portalErr(err, "remove host %s from the exporter of %s", node, id)
		}
	}
	return &csipb.ControllerUnpublishVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms the capabilities the driver serves.
func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csipb.ValidateVolumeCapabilitiesRequest) (*csipb.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	if err := checkVolumeID(req.GetVolumeId()); err != nil {
		return nil, err
	}
	if _, err := d.cfg.Portal.GetDa(ctx, &pb.GetDaRequest{DaName: req.GetVolumeId()}); err != nil {
		return nil, portalErr(err, "volume %s", req.GetVolumeId())
	}
	if _, err := parseParams(req.GetParameters()); err != nil {
		return &csipb.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	for _, c := range req.GetVolumeCapabilities() {
		if reason := capProblem(c); reason != "" {
			return &csipb.ValidateVolumeCapabilitiesResponse{Message: reason}, nil
		}
	}
	return &csipb.ValidateVolumeCapabilitiesResponse{Confirmed: &csipb.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext: req.GetVolumeContext(), VolumeCapabilities: req.GetVolumeCapabilities(), Parameters: req.GetParameters()}}, nil
}

// ListVolumes lists the DAs this driver created, a portal page at a time.
func (d *Driver) ListVolumes(ctx context.Context, req *csipb.ListVolumesRequest) (*csipb.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries is negative")
	}
	limit := req.GetMaxEntries()
	if limit > 1000 {
		limit = 1000
	}
	resp := &csipb.ListVolumesResponse{}
	// Tokens are the portal's with a prefix, so a token not from here is
	// refused rather than read as a DA name to start after.
	token, ok := strings.CutPrefix(req.GetStartingToken(), tokenPrefix)
	if !ok && req.GetStartingToken() != "" {
		return nil, status.Errorf(codes.Aborted, "starting_token %q was not returned by ListVolumes", req.GetStartingToken())
	}
	for {
		got, err := d.cfg.Portal.ListDa(ctx, &pb.ListDaRequest{Page: &pb.Page{Limit: limit, PageToken: token}})
		if err != nil {
			if c := status.Code(err); token != "" && (c == codes.InvalidArgument || c == codes.NotFound || c == codes.OutOfRange) {
				return nil, status.Errorf(codes.Aborted, "starting_token %q: %s", token, status.Convert(err).Message())
			}
			return nil, portalErr(err, "list DAs")
		}
		for _, da := range got.GetDaMsgList() {
			if strings.HasPrefix(da.GetDescription(), descPrefix) {
				resp.Entries = append(resp.Entries, &csipb.ListVolumesResponse_Entry{Volume: volumeOf(da)})
			}
		}
		token = got.GetNextPageToken()
		// A page of DAs not ours only: go on, so that a caller paging
		// with max_entries sees no empty page before the end.
		if len(resp.Entries) > 0 || token == "" {
			break
		}
	}
	if token != "" {
		resp.NextToken = tokenPrefix + token
	}
	return resp, nil
}

// GetCapacity is the free space of the cluster's PDs.
func (d *Driver) GetCapacity(ctx context.Context, req *csipb.GetCapacityRequest) (*csipb.GetCapacityResponse, error) {
	for _, c := range req.GetVolumeCapabilities() {
		if capProblem(c) != "" {
			return &csipb.GetCapacityResponse{}, nil
		}
	}
	if _, err := parseParams(req.GetParameters()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sum, err := d.cfg.Portal.GetClusterSummary(ctx, &pb.GetClusterSummaryRequest{})
	if err != nil {
		return nil, portalErr(err, "cluster summary")
	}
	return &csipb.GetCapacityResponse{AvailableCapacity: int64(sum.GetFreeBytes())}, nil
}

// ControllerExpandVolume grows the DA's volume.
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csipb.ControllerExpandVolumeRequest) (*csipb.ControllerExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity range missing")
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	got, err := d.cfg.Portal.GetDa(ctx, &pb.GetDaRequest{DaName: id})
	if err != nil {
		return nil, portalErr(err, "volume %s", id)
	}
	da := got.GetDaMsg()
	node := req.GetVolumeCapability().GetBlock() == nil
	req2, lim := req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes()
	if req2 < 0 || lim < 0 || lim > 0 && req2 > lim {
		return nil, status.Error(codes.InvalidArgument, "bad capacity range")
	}
	if int64(da.GetDaSize()) >= req2 {
		return &csipb.ControllerExpandVolumeResponse{CapacityBytes: int64(da.GetDaSize()), NodeExpansionRequired: node}, nil
	}
	step := int64(da.GetClusterSize())
	if step <= 0 {
		step = 8192
	}
	size := roundUp(req2, step)
	if lim > 0 && size > lim {
		return nil, status.Errorf(codes.OutOfRange, "volume %s grows in steps of %d bytes: %d exceeds limit_bytes %d", id, step, size, lim)
	}
	mod, err := d.cfg.Portal.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: id, DaSize: new(uint64(size))})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			return nil, status.Errorf(codes.OutOfRange, "grow volume %s: %s", id, status.Convert(err).Message())
		}
		return nil, portalErr(err, "grow volume %s", id)
	}
	return &csipb.ControllerExpandVolumeResponse{CapacityBytes: int64(mod.GetDaMsg().GetDaSize()), NodeExpansionRequired: node}, nil
}
