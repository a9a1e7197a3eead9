package agent_test

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk/spdktest"
)

func TestAllowListRefusesOtherCallers(t *testing.T) {
	fake := srvFake(t)
	ctx := srvCtx(t)
	req := dnRequest(1, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1)

	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.AllowedCallers = []string{"192.0.2.10", "10.0.0.0/8"}
	r := srvStart(t, cfg)
	c := srvDialRaw(t, r.addr)
	fake.ResetCounts()
	req.AgentId = r.a.AgentID()
	_, err := c.Sync(ctx, req)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Zero(t, fake.TotalRPCs(), "a refused caller never reaches SPDK")

	cfg.AllowedCallers = []string{"192.0.2.10", "127.0.0.0/8"}
	c = srvDial(t, srvStart(t, cfg).addr)
	req.AgentId = ""
	rep, err := c.Sync(ctx, req)
	require.NoError(t, err)
	allOK(t, rep)
}

// tlsAgent is an agent of node name serving with mutual TLS, allowing
// callers from 127.0.0.0/8 (an extra layer), and the CA of its callers.
func tlsAgent(t *testing.T, name string) (*running, *mtlstest.CA, *spdktest.Server) {
	t.Helper()
	fake := srvFake(t)
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.Insecure = false
	cfg.AllowedCallers = []string{"127.0.0.0/8"}
	cfg.TLS, err = ca.Issue(mtls.RoleAgent, name)
	require.NoError(t, err)
	return srvStart(t, cfg), ca, fake
}

// rootsOf is ca's certificate as a pool.
func rootsOf(t *testing.T, ca *mtlstest.CA) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.CA().Cert)
	return pool
}

func TestMutualTLSRolesRefuseEveryoneButTheMonitor(t *testing.T) {
	const node = "127.0.0.1:9720"
	r, ca, fake := tlsAgent(t, node)
	require.Equal(t, node, r.a.NodeName())
	ctx := srvCtx(t)
	issue := func(role mtls.Role, name string) agent.DialOption {
		c, err := ca.Issue(role, name)
		require.NoError(t, err)
		return agent.WithTLS(c)
	}
	req := func() *agentpb.SyncRequest {
		q := dnRequest(3, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1)
		q.AgentId, q.NodeName = r.a.AgentID(), node
		return q
	}
	refused := func(code codes.Code, c agentpb.AgentClient, q *agentpb.SyncRequest, why string) {
		t.Helper()
		fake.ResetCounts()
		_, err := c.Sync(ctx, q)
		require.Equal(t, code, status.Code(err), "%s: %v", why, err)
		require.Empty(t, mutations(fake), "%s changed SPDK", why)
	}

	// The CLI's certificate: may look (Health), may not Sync or Reanchor.
	admin := srvDialRaw(t, r.addr, issue(mtls.RoleAdmin, "admin"))
	h, err := admin.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err, "an operator may debug with Health")
	require.Equal(t, node, h.NodeName)
	require.Equal(t, r.a.AgentID(), h.AgentId)
	refused(codes.PermissionDenied, admin, req(), "the CLI's certificate")
	_, err = admin.Reanchor(ctx, &agentpb.ReanchorRequest{AgentId: r.a.AgentID(), NodeId: nvmeof.NewID(), StoreRevision: 1, Generation: 1})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	// A portal's or another agent's certificate: neither.
	refused(codes.PermissionDenied, srvDialRaw(t, r.addr, issue(mtls.RolePortal, "portal")), req(), "a portal's certificate")
	other := srvDialRaw(t, r.addr, issue(mtls.RoleAgent, "127.0.0.2:9720"))
	refused(codes.PermissionDenied, other, req(), "another agent's certificate")
	_, err = other.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)

	// No certificate at all, though from an allowed source address:
	// refused in the handshake.
	refused(codes.Unavailable, srvDialRaw(t, r.addr), req(), "plaintext from an allowed address")
	noCert := credentials.NewTLS(&tls.Config{RootCAs: rootsOf(t, ca), MinVersion: tls.VersionTLS12})
	refused(codes.Unavailable, srvDialRaw(t, r.addr, agent.WithGRPCOptions(grpc.WithTransportCredentials(noCert))), req(),
		"TLS without a client certificate")
	// Another CA's monitor: refused in the handshake.
	foreignCA, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	foreign, err := foreignCA.Issue(mtls.RoleMonitor, "m0")
	require.NoError(t, err)
	foreign.CAFile = mtls.Files(ca.Dir, "").CAFile // it does trust the agent
	refused(codes.Unavailable, srvDialRaw(t, r.addr, agent.WithTLS(foreign)), req(), "another CA's monitor")

	// The monitor: only for this node and this agent.
	mon := srvDialRaw(t, r.addr, issue(mtls.RoleMonitor, "m0"))
	q := req()
	q.NodeName = "127.0.0.1:09720"
	refused(codes.FailedPrecondition, mon, q, "a monitor's state for another node")
	q = req()
	q.NodeName = ""
	refused(codes.FailedPrecondition, mon, q, "a monitor's state without a node name")
	q = req()
	q.AgentId = agent.NewAgentID()
	refused(codes.FailedPrecondition, mon, q, "a monitor's state for another agent")
	rep, err := mon.Sync(ctx, req())
	require.NoError(t, err)
	allOK(t, rep)

	_, err = agent.Dial(ctx, r.addr, agent.WithTLS(mtls.Config{CAFile: mtls.Files(ca.Dir, "").CAFile}))
	require.ErrorIs(t, err, agent.ErrConfig)
}

func TestAgentCertificateMustNameAnAgent(t *testing.T) {
	fake := srvFake(t)
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.Insecure = false
	cfg.TLS, err = ca.Issue(mtls.RoleMonitor, "m0")
	require.NoError(t, err)
	_, err = agent.New(cfg)
	require.ErrorIs(t, err, agent.ErrConfig)
	require.ErrorContains(t, err, "vda://monitor/m0")
}

func TestNoTLSNeedsInsecure(t *testing.T) {
	cfg := srvConfig(t, agent.RoleDN, srvFake(t))
	cfg.Insecure = false
	_, err := agent.New(cfg)
	require.ErrorIs(t, err, agent.ErrConfig)
	cfg.AllowedCallers = []string{"127.0.0.1"}
	_, err = agent.New(cfg)
	require.ErrorIs(t, err, agent.ErrConfig, "an allow-list is no substitute for TLS")
}
