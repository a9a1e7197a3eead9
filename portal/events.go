package portal

import (
	"context"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
)

// EventWatching is the type of a Watch stream's first message: it carries
// the first revision the stream reports, and no object.
const EventWatching = "watching"

// Watch implements portalpb.PortalServer: vda.Cluster.WatchEvents as a
// stream. The stream ends when the caller cancels it, when the caller fell
// too far behind (ResourceExhausted, saying where to resume), and when the
// server stops (Unavailable): Serve ends every stream before it stops.
func (s *Server) Watch(r *pb.WatchRequest, stream grpc.ServerStreamingServer[pb.WatchEvent]) error {
	opt := vda.WatchOptions{FromRevision: r.GetFromRevision(), DAName: r.GetDaName()}
	for _, k := range r.GetKinds() {
		opt.Kinds = append(opt.Kinds, vda.EventKind(k))
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(s.stopping, cancel)()
	events, err := s.c.WatchEvents(ctx, opt)
	if err != nil {
		return Status(err).Err()
	}
	defer events.Close()
	if err := stream.Send(&pb.WatchEvent{Type: EventWatching, Revision: events.Start()}); err != nil {
		return err
	}
	last := events.Start() - 1
	for ev := range events.Events() {
		if err := stream.Send(eventMsg(ev)); err != nil {
			return err
		}
		last = ev.Revision
	}
	switch err := events.Err(); {
	case err != nil:
		return Status(err).Err()
	case s.stopping.Err() != nil:
		return status.Errorf(codes.Unavailable, "portal: shutting down; watch again from revision %d", last+1)
	default:
		return Status(stream.Context().Err()).Err()
	}
}

func eventMsg(ev vda.Event) *pb.WatchEvent {
	m := &pb.WatchEvent{Revision: ev.Revision, Type: string(ev.Type), Kind: string(ev.Kind), Name: ev.Name, Parent: ev.Parent,
		Health: string(ev.Health), PrevHealth: string(ev.PrevHealth), Message: ev.Message,
		HealthyParts: uint32(ev.HealthyParts), Parts: uint32(ev.Parts), AppliedSize: ev.AppliedSizeBytes, Inflated: ev.Inflated}
	if mv := ev.Move; mv != nil {
		m.PrimaryMove = &pb.PrimaryMoveMsg{FromCntlrIdx: uint32(mv.FromCntlrIdx), FromCnName: mv.FromCN,
			ToCntlrIdx: uint32(mv.ToCntlrIdx), ToCnName: mv.ToCN, Epoch: mv.Epoch}
	}
	return m
}

// streamRecovery turns a panic in a stream handler into codes.Internal and
// logs how the stream ended.
func (s *Server) streamRecovery(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
		if err != nil {
			s.log.Debug("stream ended", "method", info.FullMethod, "code", status.Code(err).String(), "error", err)
		}
	}()
	return h(srv, ss)
}
