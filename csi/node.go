package csi

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/nvmeof"
)

// blockFile is where NodeStageVolume binds a block volume's device, under
// the staging path.
const blockFile = "block"

var nodeCaps = []csipb.NodeServiceCapability_RPC_Type{
	csipb.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
	csipb.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csipb.NodeServiceCapability_RPC_EXPAND_VOLUME,
	csipb.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

// NodeGetCapabilities lists what the node implements.
func (d *Driver) NodeGetCapabilities(context.Context, *csipb.NodeGetCapabilitiesRequest) (*csipb.NodeGetCapabilitiesResponse, error) {
	var caps []*csipb.NodeServiceCapability
	for _, c := range nodeCaps {
		caps = append(caps, &csipb.NodeServiceCapability{Type: &csipb.NodeServiceCapability_Rpc{
			Rpc: &csipb.NodeServiceCapability_RPC{Type: c}}})
	}
	return &csipb.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeGetInfo returns the node's host NQN as its ID and its location as
// its topology.
func (d *Driver) NodeGetInfo(context.Context, *csipb.NodeGetInfoRequest) (*csipb.NodeGetInfoResponse, error) {
	r := &csipb.NodeGetInfoResponse{NodeId: d.cfg.NodeID, MaxVolumesPerNode: d.cfg.MaxVolumesPerNode}
	if d.cfg.Location != "" {
		r.AccessibleTopology = &csipb.Topology{Segments: map[string]string{TopologyKey: d.cfg.Location}}
	}
	return r, nil
}

// target is volume id's exporter as Disconnect needs it.
func (d *Driver) target(id string) (Target, error) {
	v, ok := parseVolumeID(id)
	if !ok {
		return Target{}, status.Errorf(codes.NotFound, "volume %q does not exist (not a VDA CSI volume ID)", id)
	}
	nqn, err := nvmeof.ExpNQN(v.da, v.exp())
	if err != nil {
		return Target{}, status.Errorf(codes.InvalidArgument, "volume %q: %v", id, err)
	}
	return Target{VolumeID: id, NQN: string(nqn), HostNQN: d.cfg.NodeID}, nil
}

func internal(err error, what string) error {
	return status.Errorf(codes.Internal, "%s: %v", what, err)
}

// NodeStageVolume connects the volume and mounts it at the staging path
// (formatting an empty device), or binds a block volume's device to
// <staging>/block.
func (d *Driver) NodeStageVolume(ctx context.Context, req *csipb.NodeStageVolumeRequest) (*csipb.NodeStageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if id == "" || staging == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID or staging target path missing")
	}
	if err := checkCaps([]*csipb.VolumeCapability{req.GetVolumeCapability()}); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	t, err := d.target(id)
	if err != nil {
		return nil, err
	}
	pc := req.GetPublishContext()
	if pc[ctxNQN] != t.NQN {
		return nil, status.Errorf(codes.InvalidArgument, "publish context: nqn %q, want %q", pc[ctxNQN], t.NQN)
	}
	if err := json.Unmarshal([]byte(pc[ctxListeners]), &t.Listeners); err != nil || len(t.Listeners) == 0 {
		return nil, status.Errorf(codes.InvalidArgument, "publish context: listeners %q: want a JSON array of listeners", pc[ctxListeners])
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	block := req.GetVolumeCapability().GetBlock() != nil
	where := staging
	if block {
		where = filepath.Join(staging, blockFile)
	}
	if _, ok, err := mountAt(where); err != nil {
		return nil, internal(err, "mountinfo")
	} else if ok {
		return &csipb.NodeStageVolumeResponse{}, nil
	}
	dev, err := d.cfg.Connector.Connect(ctx, t)
	if err != nil {
		return nil, internal(err, "connect "+t.NQN)
	}
	if block {
		if err := touch(where); err != nil {
			return nil, internal(err, "staging file")
		}
		if err := bindMount(dev, where, false); err != nil {
			return nil, internal(err, "bind "+dev)
		}
		return &csipb.NodeStageVolumeResponse{}, nil
	}
	m := req.GetVolumeCapability().GetMount()
	fs := m.GetFsType()
	if fs == "" {
		fs = "ext4"
	}
	have, err := fsTypeOf(ctx, dev)
	if err != nil {
		return nil, internal(err, "blkid "+dev)
	}
	if have == "" {
		args := []string{"-q", dev}
		if fs == "ext4" {
			args = []string{"-q", "-F", "-E", "nodiscard", dev}
		}
		if _, err := execRunner(ctx, "mkfs."+fs, args...); err != nil {
			return nil, internal(err, "format "+dev)
		}
		have = fs
	}
	if have != fs {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s holds %s, not %s", id, have, fs)
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return nil, internal(err, "staging path")
	}
	var flags uintptr
	for _, f := range m.GetMountFlags() {
		if f == "ro" {
			flags |= unix.MS_RDONLY
		}
	}
	if err := unix.Mount(dev, staging, fs, flags, ""); err != nil {
		return nil, internal(err, "mount "+dev)
	}
	d.log.Info("volume staged", "volume", id, "device", dev, "fs", fs, "staging", staging)
	return &csipb.NodeStageVolumeResponse{}, nil
}

func touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// NodeUnstageVolume unmounts the staging path and disconnects the
// volume's paths.
func (d *Driver) NodeUnstageVolume(ctx context.Context, req *csipb.NodeUnstageVolumeRequest) (*csipb.NodeUnstageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if id == "" || staging == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID or staging target path missing")
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	t, err := d.target(id)
	if err != nil {
		return nil, err
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	bf := filepath.Join(staging, blockFile)
	if err := unmountAll(bf); err != nil {
		return nil, internal(err, "unmount "+bf)
	}
	if err := os.Remove(bf); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, internal(err, "remove "+bf)
	}
	if err := unmountAll(staging); err != nil {
		return nil, internal(err, "unmount "+staging)
	}
	if err := d.cfg.Connector.Disconnect(ctx, t); err != nil {
		return nil, internal(err, "disconnect "+t.NQN)
	}
	d.log.Info("volume unstaged", "volume", id, "nqn", t.NQN)
	return &csipb.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume bind-mounts the staged volume at the target path.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csipb.NodePublishVolumeRequest) (*csipb.NodePublishVolumeResponse, error) {
	id, staging, target := req.GetVolumeId(), req.GetStagingTargetPath(), req.GetTargetPath()
	if id == "" || target == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID or target path missing")
	}
	if err := checkCaps([]*csipb.VolumeCapability{req.GetVolumeCapability()}); err != nil {
		return nil, err
	}
	if staging == "" {
		return nil, status.Error(codes.FailedPrecondition, "staging target path missing: the volume must be staged first")
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, ok, err := mountAt(target); err != nil {
		return nil, internal(err, "mountinfo")
	} else if ok {
		return &csipb.NodePublishVolumeResponse{}, nil
	}
	src := staging
	if req.GetVolumeCapability().GetBlock() != nil {
		src = filepath.Join(staging, blockFile)
		if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
			return nil, internal(err, "target path")
		}
		if err := touch(target); err != nil {
			return nil, internal(err, "target file")
		}
	} else if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, internal(err, "target path")
	}
	if _, ok, err := mountAt(src); err != nil {
		return nil, internal(err, "mountinfo")
	} else if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s", id, staging)
	}
	if err := bindMount(src, target, req.GetReadonly()); err != nil {
		return nil, internal(err, "bind "+src)
	}
	return &csipb.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts and removes the target path.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csipb.NodeUnpublishVolumeRequest) (*csipb.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if id == "" || target == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID or target path missing")
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	unlock, err := d.locks.lock(ctx, id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := unmountAll(target); err != nil {
		return nil, internal(err, "unmount "+target)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, internal(err, "remove "+target)
	}
	return &csipb.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetVolumeStats reports a published volume's bytes and inodes (or a
// block volume's size).
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csipb.NodeGetVolumeStatsRequest) (*csipb.NodeGetVolumeStatsResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if id == "" || path == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID or volume path missing")
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.NotFound, "volume path %s does not exist", path)
	}
	if err != nil {
		return nil, internal(err, "stat "+path)
	}
	if _, ok, err := mountAt(path); err != nil {
		return nil, internal(err, "mountinfo")
	} else if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not published at %s", id, path)
	}
	if !st.IsDir() {
		n, err := blockSize(path)
		if err != nil {
			return nil, internal(err, "size of "+path)
		}
		return &csipb.NodeGetVolumeStatsResponse{Usage: []*csipb.VolumeUsage{{Unit: csipb.VolumeUsage_BYTES, Total: n}}}, nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return nil, internal(err, "statfs "+path)
	}
	bs := fs.Bsize
	return &csipb.NodeGetVolumeStatsResponse{Usage: []*csipb.VolumeUsage{
		{Unit: csipb.VolumeUsage_BYTES, Total: int64(fs.Blocks) * bs, Available: int64(fs.Bavail) * bs,
			Used: int64(fs.Blocks-fs.Bfree) * bs},
		{Unit: csipb.VolumeUsage_INODES, Total: int64(fs.Files), Available: int64(fs.Ffree), Used: int64(fs.Files - fs.Ffree)},
	}}, nil
}

// NodeExpandVolume makes the device see its new size (Resizer) and grows
// the filesystem.
func (d *Driver) NodeExpandVolume(ctx context.Context, req *csipb.NodeExpandVolumeRequest) (*csipb.NodeExpandVolumeResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if id == "" || path == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID or volume path missing")
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	m, ok, err := mountAt(path)
	if err != nil {
		return nil, internal(err, "mountinfo")
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not mounted at %s", id, path)
	}
	t, err := d.target(id)
	if err != nil {
		return nil, err
	}
	if r, ok := d.cfg.Connector.(Resizer); ok {
		if err := r.Resize(ctx, t); err != nil {
			return nil, internal(err, "resize "+id)
		}
	}
	block := req.GetVolumeCapability().GetBlock() != nil
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		block = true
	}
	if !block {
		var err error
		switch m.fsType {
		case "ext4", "ext3", "ext2":
			_, err = execRunner(ctx, "resize2fs", m.source)
		case "xfs":
			_, err = execRunner(ctx, "xfs_growfs", path)
		default:
			err = errors.New("cannot grow filesystem " + m.fsType)
		}
		if err != nil {
			return nil, internal(err, "grow filesystem of "+id)
		}
	}
	n, err := blockSize(m.source)
	if err != nil || block {
		n, err = blockSize(path)
		if err != nil {
			n = 0
		}
	}
	return &csipb.NodeExpandVolumeResponse{CapacityBytes: n}, nil
}
