package csi

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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
	csipb.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csipb.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csipb.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csipb.ControllerServiceCapability_RPC_MODIFY_VOLUME,
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

// isOurs reports whether a DA or clone description is one this driver
// wrote for a volume.
func isOurs(desc string) bool { return strings.HasPrefix(desc, descPrefix) }

func volumeOf(da *pb.DaMsg) *csipb.Volume {
	return &csipb.Volume{VolumeId: da.GetDaName(), CapacityBytes: int64(da.GetDaSize())}
}

func cloneVolumeOf(cl *pb.CloneMsg) *csipb.Volume {
	return &csipb.Volume{VolumeId: volRef{da: cl.GetDaName(), clone: cl.GetCloneName()}.id(), CapacityBytes: int64(cl.GetSize())}
}

// inRange reports whether size is within the capacity range r.
func inRange(size int64, r *csipb.CapacityRange) bool {
	return size >= r.GetRequiredBytes() && (r.GetLimitBytes() == 0 || size <= r.GetLimitBytes())
}

// CreateVolume creates a DA for the volume, or a clone of a snapshot (or
// of a hidden snapshot of a volume) for a volume with a content source;
// or returns the one an earlier call with the same name created.
func (d *Driver) CreateVolume(ctx context.Context, req *csipb.CreateVolumeRequest) (*csipb.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name missing")
	}
	if err := checkCaps(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	params, err := parseParams(req.GetParameters())
	if err == nil {
		err = params.withMutable(req.GetMutableParameters())
	}
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.GetVolumeContentSource() != nil && len(req.GetMutableParameters()) > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "mutable parameters %v: %s", req.GetMutableParameters(), cloneQoSReason)
	}
	size, err := d.volumeBytes(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	choices, err := locationChoices(req.GetAccessibilityRequirements())
	if err != nil {
		return nil, err
	}
	name := VolumeName(req.GetName())
	unlock, err := d.locks.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if req.GetVolumeContentSource() != nil {
		return d.createFromSource(ctx, req, choices)
	}
	p := d.cfg.Portal
	got, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: name})
	if err == nil {
		da := got.GetDaMsg()
		if da.GetDescription() != description(req.GetName()) {
			return nil, status.Errorf(codes.AlreadyExists, "DA %s exists and is not volume %q (description %q)", name, req.GetName(), da.GetDescription())
		}
		if !inRange(int64(da.GetDaSize()), req.GetCapacityRange()) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with %d bytes, outside the capacity range asked", req.GetName(), da.GetDaSize())
		}
		if params.qos != nil && !proto.Equal(params.qos, da.GetQos()) {
			// An earlier call created the DA and did not get to its QoS.
			if _, err := p.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: name, Qos: params.qos}); err != nil {
				return nil, portalErr(err, "set QoS of DA %s", name)
			}
		}
		return d.daVolume(ctx, da)
	}
	if !isNotFound(err) {
		return nil, portalErr(err, "get DA %s", name)
	}
	physical := roundUp(int64(float64(size)*params.physicalFactor), 8192)
	var da *pb.DaMsg
	for i, cn := range choices {
		created, err := p.CreateDa(ctx, &pb.CreateDaRequest{DaName: name, CntlrCnt: params.cntlrCnt, DaSize: uint64(size),
			PhysicalSize: uint64(physical), DaConf: params.daConf(), Description: description(req.GetName()),
			CnLocations: cn, DnLocations: params.dnLocations})
		if err != nil {
			switch status.Code(err) {
			case codes.ResourceExhausted:
				if i < len(choices)-1 {
					continue // a preferred segment is full: the next choice
				}
			case codes.InvalidArgument, codes.FailedPrecondition:
				// Not enough room or nodes: the CO may retry elsewhere/later.
			default:
				return nil, portalErr(err, "create DA %s", name)
			}
			return nil, status.Errorf(codes.ResourceExhausted, "create DA %s: %s", name, status.Convert(err).Message())
		}
		da = created.GetDaMsg()
		break
	}
	if params.qos != nil {
		if _, err := p.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: name, Qos: params.qos}); err != nil {
			// A volume without the limits asked is not what was asked.
			_, _ = p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: name})
			return nil, portalErr(err, "set QoS of DA %s", name)
		}
	}
	d.log.Info("volume created", "volume", name, "name", req.GetName(), "bytes", da.GetDaSize(), "qos", params.qos.String())
	return d.daVolume(ctx, da)
}

// daVolume is the CreateVolume answer for DA da, with its topology.
func (d *Driver) daVolume(ctx context.Context, da *pb.DaMsg) (*csipb.CreateVolumeResponse, error) {
	v := volumeOf(da)
	top, err := d.topologyOf(ctx, da)
	if err != nil {
		return nil, err
	}
	v.AccessibleTopology = top
	return &csipb.CreateVolumeResponse{Volume: v}, nil
}

// createFromSource makes a volume from a snapshot (a clone of it) or from
// a volume (a clone of a hidden snapshot taken of it), in the source's
// DA. Only a DA's volume can be the source: VDA snapshots a DA's volume.
func (d *Driver) createFromSource(ctx context.Context, req *csipb.CreateVolumeRequest, choices [][]string) (*csipb.CreateVolumeResponse, error) {
	p := d.cfg.Portal
	var da, snap string
	var srcSize uint64
	switch src := req.GetVolumeContentSource().GetType().(type) {
	case *csipb.VolumeContentSource_Snapshot:
		id := src.Snapshot.GetSnapshotId()
		ref, ok := parseSnapshotID(id)
		if !ok {
			return nil, status.Errorf(codes.NotFound, "snapshot %q does not exist (not a VDA CSI snapshot ID)", id)
		}
		got, err := p.GetSnap(ctx, &pb.GetSnapRequest{DaName: ref.da, SnapName: ref.snap})
		if err != nil {
			return nil, portalErr(err, "source snapshot %s", id)
		}
		da, snap, srcSize = ref.da, ref.snap, got.GetSnapMsg().GetSize()
	case *csipb.VolumeContentSource_Volume:
		id := src.Volume.GetVolumeId()
		v, ok := parseVolumeID(id)
		if !ok {
			return nil, status.Errorf(codes.NotFound, "volume %q does not exist (not a VDA CSI volume ID)", id)
		}
		if v.clone != "" {
			if _, err := p.GetClone(ctx, &pb.GetCloneRequest{DaName: v.da, CloneName: v.clone}); err != nil {
				return nil, portalErr(err, "source volume %s", id)
			}
			return nil, status.Errorf(codes.InvalidArgument, "volume %s was made from a snapshot or a volume and cannot be cloned: VDA snapshots a DA's volume only", id)
		}
		got, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: v.da})
		if err != nil {
			return nil, portalErr(err, "source volume %s", id)
		}
		da, srcSize = v.da, got.GetDaMsg().GetDaSize()
	default:
		return nil, status.Error(codes.InvalidArgument, "volume content source of unknown type")
	}
	vol := volRef{da: da, clone: VolumeName(req.GetName())}
	hidden := ""
	if req.GetVolumeContentSource().GetVolume() != nil {
		hidden = vol.hiddenSnap()
		snap = hidden
	}
	r := req.GetCapacityRange()
	if r.GetLimitBytes() > 0 && uint64(r.GetLimitBytes()) < srcSize {
		return nil, status.Errorf(codes.OutOfRange, "the source holds %d bytes, more than limit_bytes %d", srcSize, r.GetLimitBytes())
	}
	got, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: da})
	if err != nil {
		return nil, portalErr(err, "DA %s of the source", da)
	}
	daMsg := got.GetDaMsg()
	top, err := d.topologyOf(ctx, daMsg)
	if err != nil {
		return nil, err
	}
	if !topologyFits(top, choices) {
		return nil, status.Errorf(codes.ResourceExhausted, "a volume made from %s lives in DA %s, whose controllers are in %v: none is in the requisite topology",
			protoText(req.GetVolumeContentSource()), da, top)
	}
	answer := func(cl *pb.CloneMsg) (*csipb.CreateVolumeResponse, error) {
		v := cloneVolumeOf(cl)
		v.ContentSource, v.AccessibleTopology = req.GetVolumeContentSource(), top
		return &csipb.CreateVolumeResponse{Volume: v}, nil
	}
	// Idempotency: the clone of this name in this DA, made from this source.
	if old, err := p.GetClone(ctx, &pb.GetCloneRequest{DaName: da, CloneName: vol.clone}); err == nil {
		cl := old.GetCloneMsg()
		if cl.GetDescription() != description(req.GetName()) || cl.GetSnapName() != snap {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with another source (snapshot %q)", req.GetName(), cl.GetSnapName())
		}
		if !inRange(int64(cl.GetSize()), r) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with %d bytes, outside the capacity range asked", req.GetName(), cl.GetSize())
		}
		return answer(cl)
	} else if !isNotFound(err) {
		return nil, portalErr(err, "get clone %s", vol.id())
	}
	if old, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: vol.clone}); err == nil && isOurs(old.GetDaMsg().GetDescription()) {
		return nil, status.Errorf(codes.AlreadyExists, "volume %q exists without a content source", req.GetName())
	}
	size := srcSize
	if uint64(r.GetRequiredBytes()) > size {
		step := max(daMsg.GetClusterSize(), 8192)
		size = uint64(roundUp(r.GetRequiredBytes(), int64(step)))
		if r.GetLimitBytes() > 0 && size > uint64(r.GetLimitBytes()) {
			return nil, status.Errorf(codes.OutOfRange, "volumes of DA %s grow in steps of %d bytes: %d exceeds limit_bytes %d", da, step, size, r.GetLimitBytes())
		}
		if size > daMsg.GetPhysicalSize() {
			return nil, status.Errorf(codes.OutOfRange, "a volume made from %s holds at most the physical size %d of DA %s, %d asked",
				protoText(req.GetVolumeContentSource()), daMsg.GetPhysicalSize(), da, size)
		}
	}
	if hidden != "" {
		if _, err := p.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: da, SnapName: hidden, Description: cloneSnapDescPrefix + req.GetName()}); err != nil {
			return nil, portalErr(err, "snapshot %s of volume %s", hidden, da)
		}
	}
	undo := func() {
		_, _ = p.DeleteClone(ctx, &pb.DeleteCloneRequest{DaName: da, CloneName: vol.clone})
		if hidden != "" {
			_, _ = p.DeleteSnap(ctx, &pb.DeleteSnapRequest{DaName: da, SnapName: hidden})
		}
	}
	created, err := p.CreateClone(ctx, &pb.CreateCloneRequest{DaName: da, CloneName: vol.clone, SnapName: snap, Description: description(req.GetName())})
	if err != nil {
		undo()
		return nil, portalErr(err, "clone %s of DA %s", vol.clone, da)
	}
	cl := created.GetCloneMsg()
	if size > cl.GetSize() {
		mod, err := p.ModifyClone(ctx, &pb.ModifyCloneRequest{DaName: da, CloneName: vol.clone, Size: &size})
		if err != nil {
			undo()
			return nil, portalErr(err, "grow clone %s of DA %s to %d bytes", vol.clone, da, size)
		}
		cl = mod.GetCloneMsg()
	}
	d.log.Info("volume created", "volume", vol.id(), "name", req.GetName(), "bytes", cl.GetSize(), "source", protoText(req.GetVolumeContentSource()))
	return answer(cl)
}

// cloneSnapDescPrefix starts the description of the hidden snapshot of a
// volume cloned from a volume; the clone volume's CSI name follows.
const cloneSnapDescPrefix = "csi.vda.io/clone-of-volume="

func protoText(src *csipb.VolumeContentSource) string {
	if s := src.GetSnapshot(); s != nil {
		return "snapshot " + s.GetSnapshotId()
	}
	return "volume " + src.GetVolume().GetVolumeId()
}

// DeleteVolume deletes the volume's exporter, then its DA or clone (with
// the hidden snapshot of a volume cloned from a volume); a volume gone
// already is deleted. A DA volume with snapshots, or with volumes made
// from it, is not deleted: FailedPrecondition, as the CSI spec allows for
// snapshots that are not independent of their volume.
func (d *Driver) DeleteVolume(ctx context.Context, req *csipb.DeleteVolumeRequest) (*csipb.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	v, ok := parseVolumeID(req.GetVolumeId())
	if !ok {
		return &csipb.DeleteVolumeResponse{}, nil
	}
	unlock, err := d.locks.lock(ctx, v.id())
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := d.cfg.Portal
	if _, err := p.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: v.da, ExpName: v.exp()}); err != nil && !isNotFound(err) {
		return nil, portalErr(err, "delete exporter of %s", v.id())
	}
	if v.clone == "" {
		if _, err := p.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: v.da}); err != nil && !isNotFound(err) {
			return nil, portalErr(err, "delete DA %s", v.da)
		}
		d.log.Info("volume deleted", "volume", v.id())
		return &csipb.DeleteVolumeResponse{}, nil
	}
	if _, err := p.DeleteClone(ctx, &pb.DeleteCloneRequest{DaName: v.da, CloneName: v.clone}); err != nil && !isNotFound(err) {
		return nil, portalErr(err, "delete clone %s", v.id())
	}
	// Also after a retry that found the clone gone.
	if _, err := p.DeleteSnap(ctx, &pb.DeleteSnapRequest{DaName: v.da, SnapName: v.hiddenSnap()}); err != nil && !isNotFound(err) {
		return nil, portalErr(err, "delete snapshot %s of DA %s", v.hiddenSnap(), v.da)
	}
	d.log.Info("volume deleted", "volume", v.id())
	return &csipb.DeleteVolumeResponse{}, nil
}

// volumeExists returns NotFound (or another portal error) unless v exists.
func (d *Driver) volumeExists(ctx context.Context, v volRef) error {
	var err error
	if v.clone == "" {
		_, err = d.cfg.Portal.GetDa(ctx, &pb.GetDaRequest{DaName: v.da})
	} else {
		_, err = d.cfg.Portal.GetClone(ctx, &pb.GetCloneRequest{DaName: v.da, CloneName: v.clone})
	}
	if err != nil {
		return portalErr(err, "volume %s", v.id())
	}
	return nil
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
	v, _ := parseVolumeID(id)
	if err := validateHostNQN(node); err != nil {
		return nil, status.Errorf(codes.NotFound, "node %q: %v", node, err)
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := d.cfg.Portal
	if err := d.volumeExists(ctx, v); err != nil {
		return nil, err
	}
	var exp *pb.ExpMsg
	got, err := p.GetExp(ctx, &pb.GetExpRequest{DaName: v.da, ExpName: v.exp()})
	switch {
	case isNotFound(err):
		created, err := p.CreateExp(ctx, &pb.CreateExpRequest{DaName: v.da, ExpName: v.exp(), CloneName: v.clone, InitiatorNqn: node,
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
			mod, err := p.ModifyExp(ctx, &pb.ModifyExpRequest{DaName: v.da, ExpName: v.exp(), AddHostNqns: []string{node}})
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
	d.log.Info("volume published", "volume", id, "node", node, "listeners", len(ls))
	return &csipb.ControllerPublishVolumeResponse{PublishContext: map[string]string{ctxNQN: exp.GetExpNqn(), ctxListeners: string(lj)}}, nil
}

// ControllerUnpublishVolume removes the node's host NQN from the volume's
// exporter, and deletes the exporter with its last host.
func (d *Driver) ControllerUnpublishVolume(ctx context.Context, req *csipb.ControllerUnpublishVolumeRequest) (*csipb.ControllerUnpublishVolumeResponse, error) {
	id, node := req.GetVolumeId(), req.GetNodeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	v, ok := parseVolumeID(id)
	if !ok {
		return &csipb.ControllerUnpublishVolumeResponse{}, nil
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := d.cfg.Portal
	got, err := p.GetExp(ctx, &pb.GetExpRequest{DaName: v.da, ExpName: v.exp()})
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
		if _, err := p.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: v.da, ExpName: v.exp()}); err != nil && !isNotFound(err) {
			return nil, portalErr(err, "delete exporter of %s", id)
		}
	default:
		if _, err := p.ModifyExp(ctx, &pb.ModifyExpRequest{DaName: v.da, ExpName: v.exp(), RemoveHostNqns: []string{node}}); err != nil {
			return nil, portalErr(err, "remove host %s from the exporter of %s", node, id)
		}
	}
	d.log.Info("volume unpublished", "volume", id, "node", node)
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
	v, _ := parseVolumeID(req.GetVolumeId())
	if err := d.volumeExists(ctx, v); err != nil {
		return nil, err
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

// ListVolumes tokens: the portal's page token of the DAs, then of the
// clones, each with a prefix, so that a token not from here is refused
// rather than read as a name to start after.
const cloneTokenPrefix = "vda1c:"

// ListVolumes lists the DAs this driver created, then the clones it
// created (volumes from snapshots and volumes), a portal page at a time.
func (d *Driver) ListVolumes(ctx context.Context, req *csipb.ListVolumesRequest) (*csipb.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries is negative")
	}
	limit := min(req.GetMaxEntries(), 1000)
	resp := &csipb.ListVolumesResponse{}
	clones := false
	token, ok := strings.CutPrefix(req.GetStartingToken(), tokenPrefix)
	if !ok {
		if token, clones = strings.CutPrefix(req.GetStartingToken(), cloneTokenPrefix); !clones && req.GetStartingToken() != "" {
			return nil, status.Errorf(codes.Aborted, "starting_token %q was not returned by ListVolumes", req.GetStartingToken())
		}
	}
	badToken := func(err error) error {
		if c := status.Code(err); token != "" && (c == codes.InvalidArgument || c == codes.NotFound || c == codes.OutOfRange) {
			return status.Errorf(codes.Aborted, "starting_token %q: %s", req.GetStartingToken(), status.Convert(err).Message())
		}
		return portalErr(err, "list volumes")
	}
	for {
		// Ask the portal for no more than is still to return, so that the
		// token after the page is where the next call goes on.
		page := &pb.Page{PageToken: token}
		if limit > 0 {
			page.Limit = limit - int32(len(resp.Entries))
		}
		if !clones {
			got, err := d.cfg.Portal.ListDa(ctx, &pb.ListDaRequest{Page: page})
			if err != nil {
				return nil, badToken(err)
			}
			for _, da := range got.GetDaMsgList() {
				if isOurs(da.GetDescription()) && isHashName(da.GetDaName(), daPrefix) {
					resp.Entries = append(resp.Entries, &csipb.ListVolumesResponse_Entry{Volume: volumeOf(da)})
				}
			}
			token = got.GetNextPageToken()
			if token == "" {
				clones = true
			}
		} else {
			got, err := d.cfg.Portal.ListClone(ctx, &pb.ListCloneRequest{Page: page})
			if err != nil {
				return nil, badToken(err)
			}
			for _, cl := range got.GetCloneMsgList() {
				if isOurs(cl.GetDescription()) && isHashName(cl.GetCloneName(), daPrefix) && isHashName(cl.GetDaName(), daPrefix) {
					resp.Entries = append(resp.Entries, &csipb.ListVolumesResponse_Entry{Volume: cloneVolumeOf(cl)})
				}
			}
			token = got.GetNextPageToken()
			if token == "" {
				return resp, nil // the end
			}
		}
		if limit > 0 && int32(len(resp.Entries)) >= limit {
			break
		}
	}
	if clones {
		resp.NextToken = cloneTokenPrefix + token
	} else {
		resp.NextToken = tokenPrefix + token
	}
	return resp, nil
}

// ControllerExpandVolume grows the DA's volume, or the clone.
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csipb.ControllerExpandVolumeRequest) (*csipb.ControllerExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity range missing")
	}
	v, unlock, err := d.lockVolume(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p := d.cfg.Portal
	got, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: v.da})
	if err != nil {
		return nil, portalErr(err, "volume %s", id)
	}
	da := got.GetDaMsg()
	have := da.GetDaSize()
	if v.clone != "" {
		cl, err := p.GetClone(ctx, &pb.GetCloneRequest{DaName: v.da, CloneName: v.clone})
		if err != nil {
			return nil, portalErr(err, "volume %s", id)
		}
		have = cl.GetCloneMsg().GetSize()
	}
	node := req.GetVolumeCapability().GetBlock() == nil
	req2, lim := req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes()
	if req2 < 0 || lim < 0 || lim > 0 && req2 > lim {
		return nil, status.Error(codes.InvalidArgument, "bad capacity range")
	}
	if int64(have) >= req2 {
		return &csipb.ControllerExpandVolumeResponse{CapacityBytes: int64(have), NodeExpansionRequired: node}, nil
	}
	step := int64(da.GetClusterSize())
	if step <= 0 {
		step = 8192
	}
	size := uint64(roundUp(req2, step))
	if lim > 0 && size > uint64(lim) {
		return nil, status.Errorf(codes.OutOfRange, "volume %s grows in steps of %d bytes: %d exceeds limit_bytes %d", id, step, size, lim)
	}
	var grown uint64
	if v.clone == "" {
		mod, err := p.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: v.da, DaSize: &size})
		err = growErr(err, id)
		if err != nil {
			return nil, err
		}
		grown = mod.GetDaMsg().GetDaSize()
	} else {
		mod, err := p.ModifyClone(ctx, &pb.ModifyCloneRequest{DaName: v.da, CloneName: v.clone, Size: &size})
		if err := growErr(err, id); err != nil {
			return nil, err
		}
		grown = mod.GetCloneMsg().GetSize()
	}
	d.log.Info("volume expanded", "volume", id, "bytes", grown)
	return &csipb.ControllerExpandVolumeResponse{CapacityBytes: int64(grown), NodeExpansionRequired: node}, nil
}

func growErr(err error, id string) error {
	switch {
	case err == nil:
		return nil
	case status.Code(err) == codes.InvalidArgument:
		return status.Errorf(codes.OutOfRange, "grow volume %s: %s", id, status.Convert(err).Message())
	}
	return portalErr(err, "grow volume %s", id)
}
