package etcdembed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/etcdstore"
)

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// FuzzURLConfig: no URL panics URLConfig, and every error it gives wraps
// store.ErrInvalidURI.
func FuzzURLConfig(f *testing.F) {
	for _, s := range []string{"embedded:///var/lib/vda?prefix=/x/", "embedded://h/d", "embedded:///d?socket=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		if _, _, err := URLConfig(u); err != nil && !errors.Is(err, store.ErrInvalidURI) {
			t.Fatalf("%q: %v does not wrap ErrInvalidURI", raw, err)
		}
	})
}

func TestURLConfig(t *testing.T) {
	cfg, prefix, err := URLConfig(mustParse(t, "embedded:///var/lib/vda?prefix=/x/&socket=/run/vda.sock"))
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/vda", cfg.Dir)
	assert.Equal(t, "/run/vda.sock", cfg.Socket)
	assert.Equal(t, "/x/", prefix)
	assert.Positive(t, cfg.AutoCompactRevisions, "history is bounded by default")
	for _, bad := range []string{"embedded://host/dir", "embedded://", "embedded:///", "embedded:///d?x=1", "embedded:///d?prefix=%00"} {
		_, _, err := URLConfig(mustParse(t, bad))
		assert.ErrorIs(t, err, store.ErrInvalidURI, bad)
	}
}

// TestOpenURLs opens etcd:// and embedded:// URLs through store.Open.
func TestOpenURLs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Open(ctx, "embedded://"+dir+"?prefix=/emb/")
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("embedded")}}})
	require.NoError(t, err)

	sock := "unix://" + filepath.Join(dir, "etcd.sock")
	a, err := store.Open(ctx, "etcd:///tenant-a?endpoint="+sock)
	require.NoError(t, err)
	defer a.Close()
	b, err := store.Open(ctx, "etcd:///tenant-b?endpoint="+sock)
	require.NoError(t, err)
	defer b.Close()
	_, err = a.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("a")}}})
	require.NoError(t, err)

	kv, err := a.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "a", string(kv.Value))
	_, err = b.Get(ctx, "k")
	assert.ErrorIs(t, err, store.ErrNotFound, "prefixes isolate tenants")
	list, err := b.List(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list.KVs)

	// The raw keyspace shows where each store put its key.
	raw, err := store.Open(ctx, "etcd://?endpoint="+sock)
	require.NoError(t, err)
	defer raw.Close()
	all, err := raw.List(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	var keys []string
	for _, kv := range all.KVs {
		keys = append(keys, kv.Key)
	}
	assert.Equal(t, []string{"/emb/k", "/tenant-a/k"}, keys)

	// Closing the embedded store stops its server.
	require.NoError(t, s.Close())
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = a.Get(cctx, "k")
	assert.Error(t, err, "the server is gone")
}

// TestTLSAndAuth runs an etcd that requires client certificates and
// passwords, and opens it with the URL options.
func TestTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	files := writeCerts(t, dir)
	ec := embedConfig(Config{Dir: filepath.Join(dir, "data"), Name: "tls", Socket: filepath.Join(dir, "s"),
		HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond})
	client := url.URL{Scheme: "unixs", Path: filepath.Join(dir, "s")}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	ec.ClientTLSInfo.CertFile, ec.ClientTLSInfo.KeyFile = files["server.pem"], files["server.key"]
	ec.ClientTLSInfo.TrustedCAFile, ec.ClientTLSInfo.ClientCertAuth = files["ca.pem"], true
	ec.BcryptCost = 4 // the minimum: password checks are slow under -race
	e, err := embed.StartEtcd(ec)
	require.NoError(t, err)
	defer e.Close()
	<-e.Server.ReadyNotify()

	ctx := context.Background()
	base := "etcd:///secure?endpoint=unixs://" + client.Path + "&dial-timeout=2s&cacert=" + files["ca.pem"] +
		"&cert=" + files["client.pem"] + "&key=" + files["client.key"]
	root, err := store.Open(ctx, base)
	require.NoError(t, err, "client certificate accepted")
	cli := root.(*etcdstore.Store).Client()
	_, err = cli.UserAdd(ctx, "root", "rootpw")
	require.NoError(t, err)
	_, err = cli.UserGrantRole(ctx, "root", "root")
	require.NoError(t, err)
	_, err = cli.AuthEnable(ctx)
	require.NoError(t, err)
	require.NoError(t, root.Close())

	s, err := store.Open(ctx, base+"&user=root&password=rootpw")
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v")}}})
	require.NoError(t, err, "authenticated write")

	bad, err := store.Open(ctx, base+"&user=root&password=wrong")
	if err == nil {
		defer bad.Close()
		_, err = bad.Get(ctx, "k")
	}
	assert.Error(t, err, "wrong password refused")

	noCert := "etcd:///secure?dial-timeout=1s&endpoint=unixs://" + client.Path + "&cacert=" + files["ca.pem"] + "&user=root&password=rootpw"
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	nc, err := store.Open(cctx, noCert)
	if err == nil {
		defer nc.Close()
		_, err = nc.Get(cctx, "k")
	}
	assert.Error(t, err, "a client without a certificate is refused")
}

// writeCerts writes a CA and a server and a client certificate it signed.
func writeCerts(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	write := func(name, typ string, der []byte) {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		files[name] = p
	}
	newKey := func(name string) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		der, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		write(name, "EC PRIVATE KEY", der)
		return k
	}
	tmpl := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		}
	}
	caKey := newKey("ca.key")
	ca := tmpl(1, "vda test ca")
	ca.IsCA, ca.BasicConstraintsValid, ca.KeyUsage = true, true, x509.KeyUsageCertSign
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	write("ca.pem", "CERTIFICATE", caDER)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)

	for i, name := range []string{"server", "client"} {
		k := newKey(name + ".key")
		c := tmpl(int64(i+2), name)
		c.KeyUsage = x509.KeyUsageDigitalSignature
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		c.DNSNames = []string{"localhost", "s"} // clientv3 names a unix socket by its file name
		der, err := x509.CreateCertificate(rand.Reader, c, caCert, &k.PublicKey, caKey)
		require.NoError(t, err)
		write(name+".pem", "CERTIFICATE", der)
	}
	return files
}
