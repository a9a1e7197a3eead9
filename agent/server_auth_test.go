package agent_test

import (
	"crypto/tls"
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
)

func TestAllowListRefusesOtherCallers(t *testing.T) {
	fake := srvFake(t)
	ctx := srvCtx(t)
	req := dnRequest(1, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1)

	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.AllowedCallers = []string{"192.0.2.10", "10.0.0.0/8"}
	c := srvDial(t, srvStart(t, cfg).addr)
	fake.ResetCounts()
	_, err := c.Sync(ctx, req)
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Zero(t, fake.TotalRPCs(), "a refused caller never reaches SPDK")

	cfg.AllowedCallers = []string{"192.0.2.10", "127.0.0.0/8"}
	c = srvDial(t, srvStart(t, cfg).addr)
	rep, err := c.Sync(ctx, req)
	require.NoError(t, err)
	allOK(t, rep)
}

func TestMutualTLSRefusesUnauthenticatedCallers(t *testing.T) {
	fake := srvFake(t)
	ctx := srvCtx(t)
	server, client, err := mtlstest.WriteCerts(t.TempDir())
	require.NoError(t, err)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.TLS = server
	addr := srvStart(t, cfg).addr
	req := dnRequest(1, nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1)

	rep, err := srvDial(t, addr, agent.WithTLS(client)).Sync(ctx, req)
	require.NoError(t, err, "a caller with a certificate of the CA")
	allOK(t, rep)

	fake.ResetCounts()
	_, err = srvDial(t, addr).Sync(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "plaintext: %v", err)

	_, foreign, err := mtlstest.WriteCerts(t.TempDir())
	require.NoError(t, err)
	foreign.CAFile = client.CAFile // trusts the agent, but its certificate is another CA's
	_, err = srvDial(t, addr, agent.WithTLS(foreign)).Sync(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "foreign certificate: %v", err)

	tc, err := client.ClientTLS()
	require.NoError(t, err)
	noCert := credentials.NewTLS(&tls.Config{RootCAs: tc.RootCAs, MinVersion: tls.VersionTLS12})
	_, err = srvDial(t, addr, agent.WithGRPCOptions(grpc.WithTransportCredentials(noCert))).Sync(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "no certificate: %v", err)
	require.Empty(t, mutations(fake), "unauthenticated callers change nothing")

	_, err = agent.Dial(ctx, addr, agent.WithTLS(mtls.Config{CAFile: client.CAFile}))
	require.ErrorIs(t, err, agent.ErrConfig)
}
