package portal_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
)

// recv reads a stream's next message; the bound only turns a hang into a
// failure.
func recv(t *testing.T, w grpc.ServerStreamingClient[pb.WatchEvent]) (*pb.WatchEvent, error) {
	t.Helper()
	type r struct {
		ev  *pb.WatchEvent
		err error
	}
	c := make(chan r, 1)
	go func() {
		ev, err := w.Recv()
		c <- r{ev, err}
	}()
	select {
	case got := <-c:
		return got.ev, got.err
	case <-time.After(time.Minute):
		t.Fatal("nothing received within a minute")
		return nil, nil
	}
}

// TestWatch streams events over a real socket with mutual TLS: only the
// roles of the policy may watch, requests are validated, and a stopping
// server ends the stream instead of waiting for it.
func TestWatch(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	server, err := ca.Issue(mtls.RolePortal, "portal")
	require.NoError(t, err)
	st := newStore(t)
	cl, err := vda.New(vda.DefaultConfig(st))
	require.NoError(t, err)
	srv, err := portal.New(portal.Config{Cluster: cl, TLS: server})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, lis) }()
	defer func() {
		stop()
		<-done
	}()
	client := func(role mtls.Role) pb.PortalClient {
		cfg, err := ca.Issue(role, "x")
		require.NoError(t, err)
		tc, err := cfg.ClientTLS()
		require.NoError(t, err)
		return dial(t, lis.Addr().String(), credentials.NewTLS(tc))
	}
	ctx := context.Background()
	admin := client(mtls.RoleAdmin)

	// Refused roles and bad requests: the stream's first Recv says why.
	for role, code := range map[mtls.Role]codes.Code{mtls.RoleAgent: codes.PermissionDenied, mtls.RolePortal: codes.PermissionDenied} {
		w, err := client(role).Watch(ctx, &pb.WatchRequest{})
		require.NoError(t, err)
		_, err = recv(t, w)
		require.Equal(t, code, status.Code(err), "%s: %v", role, err)
	}
	for _, r := range []*pb.WatchRequest{{FromRevision: -1}, {Kinds: []string{"vd"}}, {Kinds: []string{"da", "da"}}, {DaName: "a b"}, {FromRevision: 1 << 40}} {
		w, err := admin.Watch(ctx, r)
		require.NoError(t, err)
		_, err = recv(t, w)
		require.Equal(t, codes.InvalidArgument, status.Code(err), "%v: %v", r, err)
	}

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := client(mtls.RoleMonitor).Watch(wctx, &pb.WatchRequest{Kinds: []string{"cn"}})
	require.NoError(t, err)
	first, err := recv(t, w)
	require.NoError(t, err)
	require.Equal(t, portal.EventWatching, first.GetType())
	require.Positive(t, first.GetRevision())
	_, err = admin.CreateCn(ctx, &pb.CreateCnRequest{CnName: "cn0:9820", CnListenerConf: conf("10.0.0.1", "4430")})
	require.NoError(t, err)
	ev, err := recv(t, w)
	require.NoError(t, err)
	require.Equal(t, "created", ev.GetType())
	require.Equal(t, "cn", ev.GetKind())
	require.Equal(t, "cn0:9820", ev.GetName())
	require.GreaterOrEqual(t, ev.GetRevision(), first.GetRevision())

	// A compacted revision is OutOfRange and says to start from now.
	rev, err := st.Revision(ctx)
	require.NoError(t, err)
	require.NoError(t, st.(store.Compactor).Compact(ctx, rev))
	cw, err := admin.Watch(ctx, &pb.WatchRequest{FromRevision: 1})
	require.NoError(t, err)
	_, err = recv(t, cw)
	require.Equal(t, codes.OutOfRange, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "watch from now")

	// Stopping the server ends the open stream.
	stop()
	_, err = recv(t, w)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.NoError(t, <-done)
	done <- nil
}
