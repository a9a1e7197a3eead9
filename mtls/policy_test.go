package mtls_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
)

func TestPolicyRoles(t *testing.T) {
	p := mtls.Policy{
		"/svc.A/Get":  {mtls.RoleAdmin},
		"/svc.A/*":    {mtls.RoleMonitor},
		"/svc.B/Open": nil,
	}
	require.Equal(t, []mtls.Role{mtls.RoleAdmin}, p.Roles("/svc.A/Get"))
	require.Equal(t, []mtls.Role{mtls.RoleMonitor}, p.Roles("/svc.A/Put"))
	require.Empty(t, p.Roles("/svc.B/Open"))
	require.Empty(t, p.Roles("/svc.C/X"), "unknown methods are closed")
	require.Empty(t, p.Roles("nonsense"))
}

// A caller in the server's process is checked like a certificate's
// identity, and its context carries it; an invalid identity is refused.
func TestAuthorizeLocal(t *testing.T) {
	p := mtls.Policy{"/svc.A/Put": {mtls.RoleMonitor}}
	mon := mtls.Identity{Role: mtls.RoleMonitor, Name: "m0"}
	ctx, err := p.AuthorizeLocal(context.Background(), mon, "/svc.A/Put")
	require.NoError(t, err)
	id, ok := mtls.CallerIdentity(ctx)
	require.True(t, ok)
	require.Equal(t, mon, id)
	_, err = p.AuthorizeLocal(context.Background(), mtls.Identity{Role: mtls.RoleAdmin, Name: "alice"}, "/svc.A/Put")
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = p.AuthorizeLocal(context.Background(), mon, "/svc.A/Delete")
	require.Equal(t, codes.PermissionDenied, status.Code(err), "methods the policy does not name are closed")
	for _, bad := range []mtls.Identity{{}, {Role: mtls.RoleMonitor}, {Role: "root", Name: "x"}} {
		_, err = p.AuthorizeLocal(context.Background(), bad, "/svc.A/Put")
		require.Equal(t, codes.Unauthenticated, status.Code(err), "%+v", bad)
	}
}

// healthServer serves grpc.health.v1 over mutual TLS with server's
// certificate and policy p, and records the identity its handler saw.
func healthServer(t *testing.T, server mtls.Config, p mtls.Policy) (string, <-chan mtls.Identity) {
	t.Helper()
	tc, err := server.ServerTLS()
	require.NoError(t, err)
	seen := make(chan mtls.Identity, 16)
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if id, ok := mtls.CallerIdentity(ctx); ok {
			seen <- id
		}
		return h(ctx, req)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)),
		grpc.ChainUnaryInterceptor(mtls.UnaryServerInterceptor(p), record),
		grpc.ChainStreamInterceptor(mtls.StreamServerInterceptor(p)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), seen
}

func healthClient(t *testing.T, addr string, creds credentials.TransportCredentials) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func tlsCreds(t *testing.T, c mtls.Config) credentials.TransportCredentials {
	t.Helper()
	tc, err := c.ClientTLS()
	require.NoError(t, err)
	return credentials.NewTLS(tc)
}

func TestInterceptorsEnforceThePolicy(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	issue := func(role mtls.Role, name string) mtls.Config {
		c, err := ca.Issue(role, name)
		require.NoError(t, err)
		return c
	}
	server := issue(mtls.RoleMonitor, "m0")
	addr, seen := healthServer(t, server, mtls.Policy{
		"/grpc.health.v1.Health/Check": {mtls.RoleAdmin, mtls.RoleMonitor},
		"/grpc.health.v1.Health/Watch": {mtls.RoleAdmin},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	admin := healthClient(t, addr, tlsCreds(t, issue(mtls.RoleAdmin, "alice")))
	_, err = admin.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, mtls.Identity{Role: mtls.RoleAdmin, Name: "alice"}, <-seen, "the handler sees the caller")
	w, err := admin.Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	_, err = w.Recv()
	require.NoError(t, err, "streams are allowed for allowed roles")

	agent := healthClient(t, addr, tlsCreds(t, issue(mtls.RoleAgent, "127.0.0.1:9720")))
	_, err = agent.Check(ctx, &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.ErrorContains(t, err, "vda://agent/127.0.0.1:9720")
	w, err = agent.Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	_, err = w.Recv()
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

	monitor := healthClient(t, addr, tlsCreds(t, issue(mtls.RoleMonitor, "m1")))
	_, err = monitor.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	<-seen
	w, err = monitor.Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	_, err = w.Recv()
	require.Equal(t, codes.PermissionDenied, status.Code(err), "monitor may not Watch: %v", err)

	// A certificate of the CA without a vda:// identity: unauthenticated.
	_, err = healthClient(t, addr, tlsCreds(t, anonymous(t, ca, server))).Check(ctx, &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	// Plaintext: refused in the handshake.
	_, err = healthClient(t, addr, insecure.NewCredentials()).Check(ctx, &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

func TestPolicyWithoutTLSIsUnauthenticated(t *testing.T) {
	p := mtls.Policy{"/grpc.health.v1.Health/*": mtls.Roles}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(mtls.UnaryServerInterceptor(p)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	_, err = healthClient(t, lis.Addr().String(), insecure.NewCredentials()).Check(context.Background(), &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
}
