package mtls_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/mtls"
)

func TestIdentityRoundTrip(t *testing.T) {
	for _, id := range []mtls.Identity{
		{Role: mtls.RoleAgent, Name: "192.168.0.14:9720"},
		{Role: mtls.RoleAgent, Name: "[fd00::14]:9720"},
		{Role: mtls.RoleAgent, Name: "dn0.example.com:9720"},
		{Role: mtls.RoleAdmin, Name: "alice@ops"},
		{Role: mtls.RoleMonitor, Name: "monitor-1_a"},
		{Role: mtls.RolePortal, Name: "portal"},
	} {
		require.NoError(t, id.Validate(), id.Name)
		got, err := mtls.ParseIdentity(id.String())
		require.NoError(t, err, id.String())
		require.Equal(t, id, got)
	}
	require.Equal(t, "vda://agent/192.168.0.14:9720", mtls.Identity{Role: mtls.RoleAgent, Name: "192.168.0.14:9720"}.String())
}

func TestIdentityRefusals(t *testing.T) {
	for _, s := range []string{
		"vda://root/x", "vda://agent/", "vda://agent", "https://agent/x", "vda://agent/a/b", "vda://agent/a b",
		"vda://agent/x?y=1", "vda://agent/x#f", "vda://u@agent/x", "vda:agent/x", "vda://agent/%00",
		"vda://agent/" + string(make([]byte, 300)),
	} {
		_, err := mtls.ParseIdentity(s)
		require.ErrorIs(t, err, mtls.ErrIdentity, "%q", s)
	}
}

func selfSigned(t *testing.T, uris ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	for _, s := range uris {
		u, err := url.Parse(s)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

func TestIdentityOf(t *testing.T) {
	id, err := mtls.IdentityOf(selfSigned(t, "spiffe://x/y", "vda://monitor/m1"))
	require.NoError(t, err, "other URIs are ignored")
	require.Equal(t, mtls.Identity{Role: mtls.RoleMonitor, Name: "m1"}, id)
	for name, uris := range map[string][]string{
		"none":    nil,
		"two":     {"vda://monitor/m1", "vda://admin/a"},
		"invalid": {"vda://root/x"},
	} {
		_, err := mtls.IdentityOf(selfSigned(t, uris...))
		require.ErrorIs(t, err, mtls.ErrIdentity, name)
	}
}

func TestCAFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := mtls.NewCA("test", 0)
	require.NoError(t, err)
	require.NoError(t, ca.WriteFiles(dir, false))
	require.ErrorIs(t, ca.WriteFiles(dir, false), mtls.ErrExists, "no silent overwrite")
	st, err := os.Stat(filepath.Join(dir, mtls.CAKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	loaded, err := mtls.LoadCA(filepath.Join(dir, mtls.CACertFile), filepath.Join(dir, mtls.CAKeyFile))
	require.NoError(t, err)
	require.True(t, loaded.Cert.Equal(ca.Cert))

	out := filepath.Join(dir, "dn0")
	req := mtls.CertRequest{Identity: mtls.Identity{Role: mtls.RoleAgent, Name: "192.168.0.14:9720"}}
	cfg, err := loaded.IssueFiles(out, req, false)
	require.NoError(t, err)
	require.Equal(t, mtls.Files(out, mtls.RoleAgent), cfg)
	st, err = os.Stat(cfg.KeyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	_, err = loaded.IssueFiles(out, req, false)
	require.ErrorIs(t, err, mtls.ErrExists)
	_, err = loaded.IssueFiles(out, mtls.CertRequest{Identity: mtls.Identity{Role: mtls.RoleAdmin, Name: "a"}}, false)
	require.NoError(t, err, "another role beside it: the same ca.crt is kept")
	_, err = loaded.IssueFiles(out, req, true)
	require.NoError(t, err)
	id, err := cfg.Identity()
	require.NoError(t, err)
	require.Equal(t, req.Identity, id)

	other, err := mtls.NewCA("other", 0)
	require.NoError(t, err)
	_, err = other.IssueFiles(out, mtls.CertRequest{Identity: mtls.Identity{Role: mtls.RoleMonitor, Name: "m"}}, false)
	require.ErrorIs(t, err, mtls.ErrExists, "another CA's ca.crt is not replaced silently")
	_, err = loaded.IssueFiles(out, mtls.CertRequest{Identity: mtls.Identity{Role: "root", Name: "x"}}, false)
	require.ErrorIs(t, err, mtls.ErrIdentity)

	_, err = mtls.LoadCA(cfg.CertFile, cfg.KeyFile)
	require.ErrorIs(t, err, mtls.ErrConfig, "a leaf is not a CA")
	_, err = mtls.LoadCA(filepath.Join(dir, mtls.CACertFile), cfg.KeyFile)
	require.ErrorIs(t, err, mtls.ErrConfig, "key of another certificate")
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	_, err := mtls.Discover(dir, mtls.RoleAgent)
	require.ErrorIs(t, err, mtls.ErrNoCertificates)
	ca, err := mtls.NewCA("test", 0)
	require.NoError(t, err)
	_, err = ca.IssueFiles(dir, mtls.CertRequest{Identity: mtls.Identity{Role: mtls.RoleAgent, Name: "h:1"}}, false)
	require.NoError(t, err)
	cfg, err := mtls.Discover(dir, mtls.RoleAgent)
	require.NoError(t, err)
	require.Equal(t, mtls.Files(dir, mtls.RoleAgent), cfg)
	_, err = mtls.Discover(dir, mtls.RoleMonitor)
	require.ErrorIs(t, err, mtls.ErrConfig, "ca.crt without monitor.crt is half a setup")
	require.ErrorContains(t, err, "monitor.crt")

	t.Setenv(mtls.EnvDir, "")
	require.Equal(t, mtls.DefaultDir, mtls.Dir())
	t.Setenv(mtls.EnvDir, dir)
	require.Equal(t, dir, mtls.Dir())
	require.Contains(t, mtls.Hint(mtls.RoleAgent, "--name 192.168.0.14:9720 "), "vda certs issue")
}
