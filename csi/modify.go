package csi

import (
	"context"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/vda-io/vda/api/portalpb"
)

// cloneQoSReason is why a volume made from a snapshot or a volume takes no
// mutable parameters. Such a volume is a clone in its source's DA, and
// VDA's QoS limits are a DA's, set on the DA's own volume: a clone has none
// of its own. Applying the limits to the source DA instead would change
// another volume's service behind its owner's back, so it is refused.
const cloneQoSReason = "a volume made from a snapshot or a volume is a clone in its source's DA and has no QoS limits of its own " +
	"(VDA's QoS is a DA's, on the DA's volume); VolumeAttributesClass parameters apply to volumes created empty"

// ControllerModifyVolume sets the QoS limits that the mutable parameters
// (a VolumeAttributesClass's) name on the volume's DA, online; a limit not
// named keeps its value, 0 removes one. A volume made from a snapshot or
// a volume takes none (cloneQoSReason).
func (d *Driver) ControllerModifyVolume(ctx context.Context, req *csipb.ControllerModifyVolumeRequest) (*csipb.ControllerModifyVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID missing")
	}
	m := req.GetMutableParameters()
	if err := CheckMutableParameters(m); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	v, unlock, err := d.lockVolume(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := d.volumeExists(ctx, v); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return &csipb.ControllerModifyVolumeResponse{}, nil // nothing to change
	}
	if v.clone != "" {
		return nil, status.Errorf(codes.InvalidArgument, "volume %s: %s", id, cloneQoSReason)
	}
	p := d.cfg.Portal
	got, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: v.da})
	if err != nil {
		return nil, portalErr(err, "volume %s", id)
	}
	have := got.GetDaMsg().GetQos()
	want := &pb.QosMsg{}
	if have != nil {
		want = proto.CloneOf(have)
	}
	_ = applyMutable(want, m) // checked above
	if proto.Equal(want, have) || have == nil && proto.Equal(want, &pb.QosMsg{}) {
		return &csipb.ControllerModifyVolumeResponse{}, nil
	}
	if _, err := p.ModifyDa(ctx, &pb.ModifyDaRequest{DaName: v.da, Qos: want}); err != nil {
		return nil, portalErr(err, "set QoS of volume %s", id)
	}
	d.log.Info("volume qos changed", "volume", id, "rw_iops", want.GetRwIosPerSec(), "rw_mbps", want.GetRwMbytesPerSec(),
		"r_mbps", want.GetRMbytesPerSec(), "w_mbps", want.GetWMbytesPerSec())
	return &csipb.ControllerModifyVolumeResponse{}, nil
}
