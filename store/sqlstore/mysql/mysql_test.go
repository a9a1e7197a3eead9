package mysql

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/storetest"
)

func TestMySQLConfig(t *testing.T) {
	cases := []struct {
		uri, net, addr, db string
	}{
		{"mysql://u:p@db.example:3307/vda", "tcp", "db.example:3307", "vda"},
		{"mysql://u:p@db.example/vda", "tcp", "db.example:3306", "vda"},
		{"mysql://u:p@[::1]/vda", "tcp", "[::1]:3306", "vda"},
		{"mysql://u:p@/vda?socket=/run/mysqld/mysqld.sock", "unix", "/run/mysqld/mysqld.sock", "vda"},
	}
	for _, c := range cases {
		u, err := url.Parse(c.uri)
		require.NoError(t, err)
		cfg, err := mysqlConfig(u)
		require.NoError(t, err, c.uri)
		assert.Equal(t, c.net, cfg.Net, c.uri)
		assert.Equal(t, c.addr, cfg.Addr, c.uri)
		assert.Equal(t, c.db, cfg.DBName, c.uri)
		assert.Equal(t, "u", cfg.User)
		assert.Equal(t, "p", cfg.Passwd)
		assert.True(t, cfg.ClientFoundRows, "KeepAlive relies on matched-row counts")
		assert.Equal(t, "'+00:00'", cfg.Params["time_zone"], "lease clock arithmetic relies on UTC")
	}
	u, _ := url.Parse("mysql://u:p@h/vda?timeout=5s&readTimeout=1s")
	cfg, err := mysqlConfig(u)
	require.NoError(t, err)
	assert.Equal(t, "5s", cfg.Timeout.String(), "driver parameters pass through")

	for _, bad := range []string{
		"mysql://u:secret@h",               // no database
		"mysql://u:secret@h/a/b",           // two path elements
		"mysql://u:secret@/vda",            // no host, no socket
		"mysql://u:secret@h/vda?timeout=x", // bad driver parameter
	} {
		u, err := url.Parse(bad)
		require.NoError(t, err)
		_, err = mysqlConfig(u)
		assert.ErrorIs(t, err, store.ErrInvalidURI, bad)
		if err != nil {
			assert.NotContains(t, err.Error(), "secret", bad)
		}
	}
}

func TestRegistersSchemes(t *testing.T) {
	for _, scheme := range []string{"mysql"} {
		assert.Contains(t, store.Schemes(), scheme, "registered with store.Open")
	}
}

// FuzzURI: no URI panics the parser, every error wraps
// store.ErrInvalidURI, and none shows the password.
func FuzzURI(f *testing.F) {
	storetest.FuzzURI(f, func(u *url.URL) error {
		_, err := mysqlConfig(u)
		return err
	},
		"mysql://u:p@h:3306/db?socket=/x.sock&tls=true",
		"mysql://u:p@h/db?timeout=%zz",
		"mysql://:@[::1]:0/%00",
	)
}
