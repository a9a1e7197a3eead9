package mtls_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
)

func TestEnabledAndValidate(t *testing.T) {
	for _, tc := range []struct {
		c                mtls.Config
		enabled, invalid bool
	}{
		{mtls.Config{}, false, false},
		{mtls.Config{CertFile: "c"}, true, true},
		{mtls.Config{CertFile: "c", KeyFile: "k"}, true, true},
		{mtls.Config{KeyFile: "k", CAFile: "a"}, true, true},
		{mtls.Config{CertFile: "c", KeyFile: "k", CAFile: "a"}, true, false},
	} {
		require.Equal(t, tc.enabled, tc.c.Enabled(), "%+v", tc.c)
		err := tc.c.Validate()
		if tc.invalid {
			require.ErrorIs(t, err, mtls.ErrConfig, "%+v", tc.c)
		} else {
			require.NoError(t, err, "%+v", tc.c)
		}
	}
}

// certs is a CA with an agent (server) and an admin (client) certificate.
func certs(t *testing.T) (ca *mtlstest.CA, server, client mtls.Config) {
	t.Helper()
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	server, err = ca.Issue(mtls.RoleAgent, "127.0.0.1:9720")
	require.NoError(t, err)
	client, err = ca.Issue(mtls.RoleAdmin, "alice")
	require.NoError(t, err)
	return ca, server, client
}

func TestLoadErrors(t *testing.T) {
	_, server, _ := certs(t)
	empty := filepath.Join(t.TempDir(), "empty.pem")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	for name, c := range map[string]mtls.Config{
		"plaintext":  {},
		"incomplete": {CertFile: server.CertFile},
		"no CA":      {CertFile: server.CertFile, KeyFile: server.KeyFile, CAFile: empty},
		"bad key":    {CertFile: server.CertFile, KeyFile: server.CAFile, CAFile: server.CAFile},
		"missing CA": {CertFile: server.CertFile, KeyFile: server.KeyFile, CAFile: filepath.Join(t.TempDir(), "nope")},
	} {
		_, err := c.ServerTLS()
		require.ErrorIs(t, err, mtls.ErrConfig, name)
		_, err = c.ClientTLS()
		require.ErrorIs(t, err, mtls.ErrConfig, name)
	}
}

// handshake runs one TLS connection between a server using srv and a client
// using cli and returns the client's and the server's handshake errors.
func handshake(t *testing.T, srv, cli *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	require.NoError(t, err)
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte("x"))
		}
		errc <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cli)
	if err == nil {
		// TLS 1.3 reports a refused client certificate on the first read.
		_, err = io.ReadFull(c, make([]byte, 1))
		_ = c.Close()
	}
	return err, <-errc
}

func TestMutualAuthentication(t *testing.T) {
	_, server, client := certs(t)
	_, _, foreign := certs(t)
	st, err := server.ServerTLS()
	require.NoError(t, err)
	ct, err := client.ClientTLS()
	require.NoError(t, err)

	cerr, serr := handshake(t, st, ct)
	require.NoError(t, cerr)
	require.NoError(t, serr)

	// A client certificate from another CA is refused, even by a client that trusts the server.
	foreign.CAFile = server.CAFile
	ft, err := foreign.ClientTLS()
	require.NoError(t, err)
	_, serr = handshake(t, st, ft)
	require.Error(t, serr)

	// So is a client without any certificate.
	_, serr = handshake(t, st, &tls.Config{RootCAs: ct.RootCAs, MinVersion: tls.VersionTLS12})
	require.Error(t, serr)

	// And a client does not trust a server of another CA.
	_, other, _ := certs(t)
	ot, err := other.ServerTLS()
	require.NoError(t, err)
	cerr, _ = handshake(t, ot, ct)
	require.Error(t, cerr)
}

func TestServerNameIsChecked(t *testing.T) {
	_, server, client := certs(t)
	st, err := server.ServerTLS()
	require.NoError(t, err)
	ct, err := client.ClientTLS()
	require.NoError(t, err)
	ct.ServerName = "not-the-server.example"
	cerr, _ := handshake(t, st, ct)
	var hostErr x509.HostnameError
	require.ErrorAs(t, cerr, &hostErr)
}

func TestExpectPeer(t *testing.T) {
	ca, server, client := certs(t)
	st, err := server.ServerTLS()
	require.NoError(t, err)
	ct, err := client.ClientTLS()
	require.NoError(t, err)

	cerr, serr := handshake(t, st, mtls.ExpectPeer(ct, mtls.Identity{Role: mtls.RoleAgent, Name: "127.0.0.1:9720"}))
	require.NoError(t, cerr)
	require.NoError(t, serr)
	cerr, _ = handshake(t, st, mtls.ExpectPeer(ct, mtls.Identity{Role: mtls.RoleAgent}))
	require.NoError(t, cerr, "any agent")

	// The same agent reached under another node's name: refused.
	cerr, _ = handshake(t, st, mtls.ExpectPeer(ct, mtls.Identity{Role: mtls.RoleAgent, Name: "127.0.0.1:09720"}))
	require.ErrorIs(t, cerr, mtls.ErrWrongPeer)
	require.ErrorContains(t, cerr, "vda://agent/127.0.0.1:9720")
	// A portal where an agent is expected: refused.
	portal, err := ca.Issue(mtls.RolePortal, "portal")
	require.NoError(t, err)
	pt, err := portal.ServerTLS()
	require.NoError(t, err)
	cerr, _ = handshake(t, pt, mtls.ExpectPeer(ct, mtls.Identity{Role: mtls.RoleAgent}))
	require.ErrorIs(t, cerr, mtls.ErrWrongPeer)
}

func TestConfigIdentity(t *testing.T) {
	_, server, client := certs(t)
	id, err := server.Identity()
	require.NoError(t, err)
	require.Equal(t, mtls.Identity{Role: mtls.RoleAgent, Name: "127.0.0.1:9720"}, id)
	id, err = client.Identity()
	require.NoError(t, err)
	require.Equal(t, mtls.Identity{Role: mtls.RoleAdmin, Name: "alice"}, id)
	_, err = mtls.Config{CertFile: server.KeyFile}.Identity()
	require.ErrorIs(t, err, mtls.ErrConfig)
}
