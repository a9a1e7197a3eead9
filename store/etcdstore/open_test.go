package etcdstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/vda-io/vda/store"
)

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestClientConfig(t *testing.T) {
	cfg, prefix, err := ClientConfig(mustParse(t, "etcd://h1:2379,h2:2379/vda?user=u&password=p&dial-timeout=2s"))
	require.NoError(t, err)
	assert.Equal(t, []string{"h1:2379", "h2:2379"}, cfg.Endpoints)
	assert.Equal(t, "/vda/", prefix)
	assert.Equal(t, "u", cfg.Username)
	assert.Equal(t, "p", cfg.Password)
	assert.Equal(t, 2*time.Second, cfg.DialTimeout)
	assert.Nil(t, cfg.TLS)

	cfg, prefix, err = ClientConfig(mustParse(t, "etcd://me:pw@h1:2379?endpoint=unix:///run/e.sock&tls=1"))
	require.NoError(t, err)
	assert.Equal(t, []string{"h1:2379", "unix:///run/e.sock"}, cfg.Endpoints)
	assert.Equal(t, "", prefix, "no path: the whole keyspace")
	assert.Equal(t, "me", cfg.Username)
	assert.Equal(t, "pw", cfg.Password)
	assert.NotNil(t, cfg.TLS)

	_, prefix, err = ClientConfig(mustParse(t, "etcd://h/a/b/"))
	require.NoError(t, err)
	assert.Equal(t, "/a/b/", prefix)

	for _, bad := range []string{
		"etcd:///vda",                               // no endpoint
		"etcd://h,/x",                               // empty host
		"etcd://h?bogus=1",                          // unknown parameter
		"etcd://h?dial-timeout=soon",                // bad duration
		"etcd://h?password=s3cret",                  // password without user
		"etcd://h?cert=c.pem",                       // cert without key
		"etcd://h?tls=maybe",                        // bad bool
		"etcd://u:s3cret@h?cacert=/nonexistent.pem", // unreadable CA
		"memory://h",                                // wrong scheme
	} {
		_, _, err := ClientConfig(mustParse(t, bad))
		require.ErrorIs(t, err, store.ErrInvalidURI, bad)
		assert.NotContains(t, err.Error(), "s3cret", bad)
	}
}

func TestEmbeddedURLConfig(t *testing.T) {
	cfg, prefix, err := EmbeddedURLConfig(mustParse(t, "embedded:///var/lib/vda?prefix=/x/&socket=/run/vda.sock"))
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/vda", cfg.Dir)
	assert.Equal(t, "/run/vda.sock", cfg.Socket)
	assert.Equal(t, "/x/", prefix)
	assert.Positive(t, cfg.AutoCompactRevisions, "history is bounded by default")
	for _, bad := range []string{"embedded://host/dir", "embedded://", "embedded:///", "embedded:///d?x=1", "embedded:///d?prefix=%00"} {
		_, _, err := EmbeddedURLConfig(mustParse(t, bad))
		assert.ErrorIs(t, err, store.ErrInvalidURI, bad)
	}
}

func FuzzClientConfig(f *testing.F) {
	for _, s := range []string{
		"etcd://h1:2379,h2:2379/vda?user=u&password=p",
		"etcd://u:p@h?cacert=a&cert=b&key=c&tls=1",
		"etcd:///x?endpoint=unix:///s&dial-timeout=1s",
		"embedded:///var/lib/vda?prefix=/x/",
	} {
		f.Add(s)
	}
	const secret = "Zq9xSecretZq9x"
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil || strings.Contains(s, "Zq9x") {
			return
		}
		// Plant a password in both places a URL can carry one.
		if u.User != nil {
			u.User = url.UserPassword(u.User.Username(), secret)
		}
		if q, err := url.ParseQuery(u.RawQuery); err == nil && q.Has("password") {
			q.Set("password", secret)
			u.RawQuery = q.Encode()
		}
		check := func(err error) {
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), "store:") {
				t.Fatalf("error without the store prefix: %v", err)
			}
			if strings.Contains(err.Error(), "Zq9x") {
				t.Fatalf("error shows the password: %v", err)
			}
		}
		_, prefix, err := ClientConfig(u)
		check(err)
		if err == nil && store.ValidatePrefix(prefix) != nil {
			t.Fatalf("bad prefix %q accepted", prefix)
		}
		_, _, err = EmbeddedURLConfig(u)
		check(err)
	})
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
	ec := embedConfig(EmbeddedConfig{Dir: filepath.Join(dir, "data"), Name: "tls", Socket: filepath.Join(dir, "s"),
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
	cli := root.(*Store).Client()
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
