package portal

import (
	"context"
	"time"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
)

// CreateSnap implements portalpb.PortalServer.
func (s *Server) CreateSnap(ctx context.Context, r *pb.CreateSnapRequest) (*pb.SnapReply, error) {
	snap, err := s.c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: r.GetDaName(), Name: r.GetSnapName(),
		Description: r.GetDescription()})
	if err != nil {
		return nil, err
	}
	return &pb.SnapReply{SnapMsg: snapMsg(snap)}, nil
}

// GetSnap implements portalpb.PortalServer.
func (s *Server) GetSnap(ctx context.Context, r *pb.GetSnapRequest) (*pb.SnapReply, error) {
	snap, err := s.c.GetSnapshot(ctx, r.GetDaName(), r.GetSnapName())
	if err != nil {
		return nil, err
	}
	return &pb.SnapReply{SnapMsg: snapMsg(snap)}, nil
}

// ListSnap implements portalpb.PortalServer.
func (s *Server) ListSnap(ctx context.Context, r *pb.ListSnapRequest) (*pb.ListSnapReply, error) {
	snaps, next, err := s.c.ListSnapshots(ctx, r.GetDaName(), page(r.GetPage()))
	if err != nil {
		return nil, err
	}
	out := &pb.ListSnapReply{SnapMsgList: []*pb.SnapMsg{}, NextPageToken: next}
	for _, snap := range snaps {
		out.SnapMsgList = append(out.SnapMsgList, snapMsg(snap))
	}
	return out, nil
}

// DeleteSnap implements portalpb.PortalServer.
func (s *Server) DeleteSnap(ctx context.Context, r *pb.DeleteSnapRequest) (*pb.DeleteReply, error) {
	return &pb.DeleteReply{}, s.c.DeleteSnapshot(ctx, r.GetDaName(), r.GetSnapName())
}

// CreateClone implements portalpb.PortalServer.
func (s *Server) CreateClone(ctx context.Context, r *pb.CreateCloneRequest) (*pb.CloneReply, error) {
	cl, err := s.c.CreateClone(ctx, vda.CloneSpec{DAName: r.GetDaName(), Name: r.GetCloneName(),
		SnapName: r.GetSnapName(), Description: r.GetDescription()})
	if err != nil {
		return nil, err
	}
	return &pb.CloneReply{CloneMsg: cloneMsg(cl)}, nil
}

// GetClone implements portalpb.PortalServer.
func (s *Server) GetClone(ctx context.Context, r *pb.GetCloneRequest) (*pb.CloneReply, error) {
	cl, err := s.c.GetClone(ctx, r.GetDaName(), r.GetCloneName())
	if err != nil {
		return nil, err
	}
	return &pb.CloneReply{CloneMsg: cloneMsg(cl)}, nil
}

// ListClone implements portalpb.PortalServer.
func (s *Server) ListClone(ctx context.Context, r *pb.ListCloneRequest) (*pb.ListCloneReply, error) {
	cls, next, err := s.c.ListClones(ctx, r.GetDaName(), page(r.GetPage()))
	if err != nil {
		return nil, err
	}
	out := &pb.ListCloneReply{CloneMsgList: []*pb.CloneMsg{}, NextPageToken: next}
	for _, cl := range cls {
		out.CloneMsgList = append(out.CloneMsgList, cloneMsg(cl))
	}
	return out, nil
}

// ModifyClone implements portalpb.PortalServer.
func (s *Server) ModifyClone(ctx context.Context, r *pb.ModifyCloneRequest) (*pb.CloneReply, error) {
	cl, err := s.c.ModifyClone(ctx, r.GetDaName(), r.GetCloneName(),
		vda.CloneUpdate{Description: r.Description, SizeBytes: r.Size, Inflate: r.GetInflate()})
	if err != nil {
		return nil, err
	}
	return &pb.CloneReply{CloneMsg: cloneMsg(cl)}, nil
}

// DeleteClone implements portalpb.PortalServer.
func (s *Server) DeleteClone(ctx context.Context, r *pb.DeleteCloneRequest) (*pb.DeleteReply, error) {
	return &pb.DeleteReply{}, s.c.DeleteClone(ctx, r.GetDaName(), r.GetCloneName())
}

func snapMsg(s vda.Snapshot) *pb.SnapMsg {
	m := &pb.SnapMsg{SnapId: s.ID, SnapName: s.Name, DaName: s.DAName, Description: s.Description,
		Size: s.SizeBytes, Ready: s.Ready(), ExpName: s.ExpName, CloneCnt: uint32(s.CloneCount), Status: statusMsg(s.Status)}
	if !s.CreatedAt.IsZero() {
		m.CreatedAt = s.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	return m
}

func cloneMsg(c vda.Clone) *pb.CloneMsg {
	return &pb.CloneMsg{CloneId: c.ID, CloneName: c.Name, DaName: c.DAName, SnapName: c.SnapName,
		Description: c.Description, Size: c.SizeBytes, Inflate: c.Inflate, Inflated: c.Inflated(), Ready: c.Ready(),
		ExpName: c.ExpName, Status: statusMsg(c.Status)}
}
