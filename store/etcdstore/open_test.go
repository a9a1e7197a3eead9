package etcdstore

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	})
}
