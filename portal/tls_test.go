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

	pb "github.com/vda-io/vda/api/portalpb"
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

	tc, err := portal.ClientTLS(client)
	require.NoError(t, err)
	_, err = dial(t, addr, credentials.NewTLS(tc)).GetDn(ctx, req)
	require.Equal(t, codes.NotFound, status.Code(err), "a trusted client reaches the handler: %v", err)

	// A client certificate from another CA is refused.
	foreign.CAFile = server.CAFile // it does trust the server
	ftc, err := portal.ClientTLS(foreign)
	require.NoError(t, err)
	_, err = dial(t, addr, credentials.NewTLS(ftc)).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	// So are a client without a certificate and a plaintext one.
	_, err = dial(t, addr, credentials.NewTLS(&tls.Config{RootCAs: tc.RootCAs, MinVersion: tls.VersionTLS12})).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	_, err = dial(t, addr, insecure.NewCredentials()).GetDn(ctx, req)
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}

func TestTLSConfigErrors(t *testing.T) {
	_, err := portal.New(portal.Config{})
	require.ErrorIs(t, err, portal.ErrConfig)
	_, err = portal.ServerTLS(portal.TLSConfig{CertFile: "x"})
	require.ErrorIs(t, err, portal.ErrConfig)
	server, _, err := portaltest.WriteCerts(t.TempDir())
	require.NoError(t, err)
	empty := filepath.Join(t.TempDir(), "empty.pem")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = portal.ServerTLS(portal.TLSConfig{CertFile: server.CertFile, KeyFile: server.KeyFile, CAFile: empty})
	require.ErrorIs(t, err, portal.ErrConfig)
	_, err = portal.ClientTLS(portal.TLSConfig{CertFile: server.CertFile, KeyFile: server.CAFile, CAFile: server.CAFile})
	require.ErrorIs(t, err, portal.ErrConfig)
}
