package csi

import (
	"context"
	"strings"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/vda-io/vda/api/portalpb"
)

// snapDescPrefix starts the description of a snapshot this driver
// created; the CSI name follows.
const snapDescPrefix = "csi.vda.io/snapshot="

// snapTokenPrefix starts ListSnapshots' tokens.
const snapTokenPrefix = "vda1s:"

// SnapshotName is the VDA snapshot name of the CSI snapshot called name:
// "snap-" and 32 hex digits of its SHA-256.
func SnapshotName(name string) string { return snapPrefix + nameHash(name) }

func isOurSnap(s *pb.SnapMsg) bool {
	return strings.HasPrefix(s.GetDescription(), snapDescPrefix) && isHashName(s.GetSnapName(), snapPrefix) && isHashName(s.GetDaName(), daPrefix)
}

func snapshotOf(s *pb.SnapMsg) *csipb.Snapshot {
	out := &csipb.Snapshot{SnapshotId: snapRef{da: s.GetDaName(), snap: s.GetSnapName()}.id(), SourceVolumeId: s.GetDaName(),
		SizeBytes: int64(s.GetSize()), ReadyToUse: s.GetReady()}
	if t, err := time.Parse(time.RFC3339Nano, s.GetCreatedAt()); err == nil {
		out.CreationTime = timestamppb.New(t)
	}
	return out
}

// CreateSnapshot takes a snapshot of a DA volume (a VDA snapshot in its
// DA), or returns the one an earlier call with the same name took. It is
// ready to use once the DA's primary has taken it; the CO calls again
// until then.
func (d *Driver) CreateSnapshot(ctx context.Context, req *csipb.CreateSnapshotRequest) (*csipb.CreateSnapshotResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name missing")
	}
	src := req.GetSourceVolumeId()
	if src == "" {
		return nil, status.Error(codes.InvalidArgument, "source volume ID missing")
	}
	if len(req.GetParameters()) > 0 {
		for k := range req.GetParameters() {
			if !strings.HasPrefix(k, "csi.storage.k8s.io/") {
				return nil, status.Errorf(codes.InvalidArgument, "unknown snapshot parameter %q", k)
			}
		}
	}
	v, ok := parseVolumeID(src)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "source volume %q does not exist (not a VDA CSI volume ID)", src)
	}
	p := d.cfg.Portal
	if v.clone != "" {
		if err := d.volumeExists(ctx, v); err != nil {
			return nil, err
		}
		return nil, status.Errorf(codes.InvalidArgument, "volume %s was made from a snapshot or a volume: VDA snapshots a DA's volume only", src)
	}
	ref := snapRef{da: v.da, snap: SnapshotName(req.GetName())}
	unlock, err := d.locks.lock(ctx, ref.snap)
	if err != nil {
		return nil, err
	}
	defer unlock()
	desc := snapDescPrefix + req.GetName()
	got, err := p.GetSnap(ctx, &pb.GetSnapRequest{DaName: ref.da, SnapName: ref.snap})
	switch {
	case err == nil:
		if got.GetSnapMsg().GetDescription() != desc {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %s exists and is not snapshot %q", ref.id(), req.GetName())
		}
		return &csipb.CreateSnapshotResponse{Snapshot: snapshotOf(got.GetSnapMsg())}, nil
	case !isNotFound(err):
		return nil, portalErr(err, "get snapshot %s", ref.id())
	}
	if _, err := p.GetDa(ctx, &pb.GetDaRequest{DaName: v.da}); err != nil {
		return nil, portalErr(err, "source volume %s", src)
	}
	// The name is unique across volumes: a snapshot of it of another
	// volume is another snapshot.
	err = pages(func(page *pb.Page) (string, error) {
		l, err := p.ListSnap(ctx, &pb.ListSnapRequest{Page: page})
		for _, s := range l.GetSnapMsgList() {
			if s.GetSnapName() == ref.snap && s.GetDescription() == desc {
				return "", status.Errorf(codes.AlreadyExists, "snapshot %q exists of another volume, %s", req.GetName(), s.GetDaName())
			}
		}
		return l.GetNextPageToken(), err
	})
	if err != nil {
		if status.Code(err) == codes.AlreadyExists {
			return nil, err
		}
		return nil, portalErr(err, "list snapshots")
	}
	created, err := p.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: ref.da, SnapName: ref.snap, Description: desc})
	if err != nil {
		return nil, portalErr(err, "snapshot %s", ref.id())
	}
	return &csipb.CreateSnapshotResponse{Snapshot: snapshotOf(created.GetSnapMsg())}, nil
}

// DeleteSnapshot deletes a snapshot; one gone already is deleted. A
// snapshot volumes were made from is not deleted (FailedPrecondition):
// their clones depend on it.
func (d *Driver) DeleteSnapshot(ctx context.Context, req *csipb.DeleteSnapshotRequest) (*csipb.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot ID missing")
	}
	ref, ok := parseSnapshotID(id)
	if !ok {
		return &csipb.DeleteSnapshotResponse{}, nil
	}
	unlock, err := d.locks.lock(ctx, ref.snap)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := d.cfg.Portal.DeleteSnap(ctx, &pb.DeleteSnapRequest{DaName: ref.da, SnapName: ref.snap}); err != nil && !isNotFound(err) {
		return nil, portalErr(err, "delete snapshot %s", id)
	}
	return &csipb.DeleteSnapshotResponse{}, nil
}

// ListSnapshots lists the snapshots this driver took: one by ID, those of
// a source volume, or all, a portal page at a time.
func (d *Driver) ListSnapshots(ctx context.Context, req *csipb.ListSnapshotsRequest) (*csipb.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Error(codes.InvalidArgument, "max_entries is negative")
	}
	p := d.cfg.Portal
	resp := &csipb.ListSnapshotsResponse{}
	if id := req.GetSnapshotId(); id != "" {
		ref, ok := parseSnapshotID(id)
		if !ok {
			return resp, nil
		}
		got, err := p.GetSnap(ctx, &pb.GetSnapRequest{DaName: ref.da, SnapName: ref.snap})
		if isNotFound(err) {
			return resp, nil
		}
		if err != nil {
			return nil, portalErr(err, "get snapshot %s", id)
		}
		if s := got.GetSnapMsg(); isOurSnap(s) && (req.GetSourceVolumeId() == "" || req.GetSourceVolumeId() == s.GetDaName()) {
			resp.Entries = append(resp.Entries, &csipb.ListSnapshotsResponse_Entry{Snapshot: snapshotOf(s)})
		}
		return resp, nil
	}
	da := ""
	if src := req.GetSourceVolumeId(); src != "" {
		v, ok := parseVolumeID(src)
		if !ok || v.clone != "" {
			return resp, nil // no snapshots of what is not a DA volume
		}
		da = v.da
	}
	token, ok := strings.CutPrefix(req.GetStartingToken(), snapTokenPrefix)
	if !ok && req.GetStartingToken() != "" {
		return nil, status.Errorf(codes.Aborted, "starting_token %q was not returned by ListSnapshots", req.GetStartingToken())
	}
	limit := min(req.GetMaxEntries(), 1000)
	for {
		page := &pb.Page{PageToken: token}
		if limit > 0 {
			page.Limit = limit - int32(len(resp.Entries))
		}
		got, err := p.ListSnap(ctx, &pb.ListSnapRequest{DaName: da, Page: page})
		if isNotFound(err) && token == "" {
			return resp, nil // the source volume is gone: none
		}
		if err != nil {
			if c := status.Code(err); token != "" && (c == codes.InvalidArgument || c == codes.NotFound || c == codes.OutOfRange) {
				return nil, status.Errorf(codes.Aborted, "starting_token %q: %s", req.GetStartingToken(), status.Convert(err).Message())
			}
			return nil, portalErr(err, "list snapshots")
		}
		for _, s := range got.GetSnapMsgList() {
			if isOurSnap(s) {
				resp.Entries = append(resp.Entries, &csipb.ListSnapshotsResponse_Entry{Snapshot: snapshotOf(s)})
			}
		}
		token = got.GetNextPageToken()
		if token == "" {
			return resp, nil
		}
		if limit > 0 && int32(len(resp.Entries)) >= limit {
			resp.NextToken = snapTokenPrefix + token
			return resp, nil
		}
	}
}
