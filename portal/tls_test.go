package portal_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/portal/portaltest"
)

func TestMutualTLS(t *testing.T) {
	good, evil := t.TempDir(), t.TempDir()
	server, client, err := portaltest.WriteCerts(good)
	require.NoError(t, err)
	_, foreign, err := portaltest.WriteCerts(evil)
	require.NoError(t, err)
	addr := serve(t, newStore(t), portal.Config{TLS: server})
	ctx := context.Background()
	req := &pb.GetDnRequest{DnName: "x"}

	tc, err := client.ClientTLS()
	require.NoError(t, err)
	_, err = dial(t, addr, credentials.NewTLS(tc)).GetDn(ctx, req)
	require.Equal(t, codes.NotFound, status.Code(err), "a trusted client reaches the handler: %v", err)

	// A client certificate from another CA is refused.
	foreign.CAFile = server.CAFile // it does trust the server
	ftc, err := foreign.ClientTLS()
	require.NoError(t, err)
	_, err = dial(t, addr, credentials.NewTLS(ftc)).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// So are a client without a certificate and a plaintext one.
	_, err = dial(t, addr, credentials.NewTLS(&tls.Config{RootCAs: tc.RootCAs, MinVersion: tls.VersionTLS12})).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	_, err = dial(t, addr, insecure.NewCredentials()).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

// TestRoles: operators and monitors drive the portal; an agent's or a
// portal's certificate cannot even read, let alone create a node.
func TestRoles(t *testing.T) {
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	server, err := ca.Issue(mtls.RolePortal, "portal")
	require.NoError(t, err)
	st := newStore(t)
	addr := serve(t, st, portal.Config{TLS: server})
	ctx := context.Background()
	as := func(role mtls.Role, name string) pb.PortalClient {
		c, err := ca.Issue(role, name)
		require.NoError(t, err)
		tc, err := c.ClientTLS()
		require.NoError(t, err)
		return dial(t, addr, credentials.NewTLS(mtls.ExpectPeer(tc, mtls.Identity{Role: mtls.RolePortal})))
	}
	create := &pb.CreateDnRequest{DnName: "192.168.0.14:9720", DnListenerConf: conf("192.168.0.14", "4420")}

	for _, c := range []pb.PortalClient{as(mtls.RoleAgent, "192.168.0.14:9720"), as(mtls.RolePortal, "portal-2")} {
		_, err := c.CreateDn(ctx, create)
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		_, err = c.ListDn(ctx, &pb.ListDnRequest{})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	}
	rep, err := as(mtls.RoleAdmin, "alice").ListDn(ctx, &pb.ListDnRequest{})
	require.NoError(t, err)
	require.Empty(t, rep.DnMsgList, "the refused create changed nothing")

	mon := as(mtls.RoleMonitor, "m0")
	_, err = mon.CreateDn(ctx, create)
	require.NoError(t, err, "monitors may write")
	_, err = mon.UnbindDn(ctx, &pb.UnbindDnRequest{DnName: create.DnName})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "only an operator unbinds: %v", err)
	_, err = as(mtls.RoleAdmin, "alice").UnbindDn(ctx, &pb.UnbindDnRequest{DnName: create.DnName})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "an operator reaches the handler: %v", err)
}

func TestTLSConfigErrors(t *testing.T) {
	_, err := portal.New(portal.Config{})
	require.ErrorIs(t, err, portal.ErrConfig)
	_, err = mtls.Config{CertFile: "x"}.ServerTLS()
	require.ErrorIs(t, err, mtls.ErrConfig)
	server, client, err := portaltest.WriteCerts(t.TempDir())
	require.NoError(t, err)
	empty := filepath.Join(t.TempDir(), "empty.pem")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = mtls.Config{CertFile: server.CertFile, KeyFile: server.KeyFile, CAFile: empty}.ServerTLS()
	require.ErrorIs(t, err, mtls.ErrConfig)
	_, err = mtls.Config{CertFile: server.CertFile, KeyFile: server.CAFile, CAFile: server.CAFile}.ClientTLS()
	require.ErrorIs(t, err, mtls.ErrConfig)
	_, err = portal.New(portal.Config{Cluster: newCluster(t), TLS: mtls.Config{CertFile: server.CertFile,
		KeyFile: server.KeyFile, CAFile: empty}})
	require.ErrorIs(t, err, portal.ErrConfig, "a bad TLS config fails New")

	cl := newCluster(t)
	_, err = portal.New(portal.Config{Cluster: cl})
	require.ErrorIs(t, err, portal.ErrConfig, "neither TLS nor Insecure")
	_, err = portal.New(portal.Config{Cluster: cl, TLS: client})
	require.ErrorIs(t, err, portal.ErrConfig, "an admin's certificate is no portal's")
	require.ErrorContains(t, err, "vda://admin/admin")
	_, err = portal.New(portal.DefaultConfig(cl, server))
	require.NoError(t, err)
}

func newCluster(t *testing.T) *vda.Cluster {
	cl, err := vda.New(vda.DefaultConfig(newStore(t)))
	require.NoError(t, err)
	return cl
}
