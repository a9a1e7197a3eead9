package sqlstore

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
)

func TestRebind(t *testing.T) {
	assert.Equal(t, "SELECT a FROM t WHERE x = $1 AND y IN ($2,$3)",
		postgres.rebind("SELECT a FROM t WHERE x = ? AND y IN (?,?)"))
	assert.Equal(t, "SELECT a FROM t WHERE x = ?", mysqlDialect.rebind("SELECT a FROM t WHERE x = ?"))
	assert.Equal(t, "SELECT 1 FROM s WHERE id = 1 FOR UPDATE", mysqlDialect.rebind("SELECT 1 FROM s WHERE id = 1{forupdate}"))
	assert.Equal(t, "SELECT 1 FROM s WHERE id = 1", sqliteDialect.rebind("SELECT 1 FROM s WHERE id = 1{forupdate}"))
	assert.Equal(t, "x > "+postgres.nowMS, postgres.rebind("x > {now}"))
	assert.Equal(t, "", placeholders(0))
	assert.Equal(t, "?,?,?", placeholders(3))
}

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

func TestSQLitePath(t *testing.T) {
	for uri, want := range map[string]string{
		"sqlite:///var/lib/vda/vda.db": "/var/lib/vda/vda.db",
		"sqlite://vda.db":              "vda.db",
		"sqlite:vda.db":                "vda.db",
	} {
		u, err := url.Parse(uri)
		require.NoError(t, err)
		got, err := sqlitePath(u)
		require.NoError(t, err, uri)
		assert.Equal(t, want, got, uri)
	}
	for _, bad := range []string{"sqlite://", "sqlite:///a%3Fb.db"} {
		u, err := url.Parse(bad)
		require.NoError(t, err)
		_, err = sqlitePath(u)
		assert.ErrorIs(t, err, store.ErrInvalidURI, bad)
	}
}

func TestDialectFor(t *testing.T) {
	for _, scheme := range []string{"postgresql", "postgres", "mysql", "sqlite"} {
		_, err := dialectFor(scheme)
		assert.NoError(t, err, scheme)
		assert.Contains(t, store.Schemes(), scheme, "registered with store.Open")
	}
	_, err := dialectFor("oracle")
	assert.ErrorIs(t, err, store.ErrInvalidURI)
}

func TestNotifiedPayload(t *testing.T) {
	s := &Store{schema: "mine", hub: newHub()}
	for _, p := range []string{"other:50", "mine", "mine:x", ":7", "mine:-3"} {
		s.notified(p)
	}
	rev, _ := s.hub.current()
	assert.Zero(t, rev, "foreign or malformed payloads are ignored")
	s.notified("mine:42")
	rev, _ = s.hub.current()
	assert.Equal(t, int64(42), rev)
	s.notified("mine:41")
	rev, _ = s.hub.current()
	assert.Equal(t, int64(42), rev, "the hub never goes back")
}

// FuzzURI feeds arbitrary URIs to every dialect's URI parser: none may
// panic, every error wraps store.ErrInvalidURI, and no error shows the
// password.
func FuzzURI(f *testing.F) {
	for _, seed := range []string{
		"postgresql://vda_user:vda_password@192.168.0.10:5432/vda_db",
		"postgres://u:p@/db?host=/tmp/sock&port=5432&search_path=s",
		"mysql://u:p@h:3306/db?socket=/x.sock&tls=true",
		"mysql://u:p@h/db?timeout=%zz",
		"sqlite:///var/lib/vda/vda.db",
		"sqlite:rel.db",
		"postgresql://u:p@h:99999999/db",
		"mysql://:@[::1]:0/%00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		pass, _ := u.User.Password()
		check := func(err error) {
			if err == nil {
				return
			}
			if !errors.Is(err, store.ErrInvalidURI) {
				t.Fatalf("%q: error does not wrap ErrInvalidURI: %v", raw, err)
			}
			if len(pass) >= 4 && strings.Contains(err.Error(), pass) {
				t.Fatalf("%q: error shows the password: %v", raw, err)
			}
		}
		_, err = mysqlConfig(u)
		check(err)
		_, err = sqlitePath(u)
		check(err)
		_, err = pgConfig(u)
		check(err)
	})
}

func TestCombined(t *testing.T) {
	sts := []statement{
		{"INSERT INTO a VALUES (?)", []any{1}},
		{"DELETE FROM b WHERE k = ?", []any{2}},
		{"UPDATE c SET x = ?", []any{3}},
	}
	q, args := postgres.combined(sts)
	assert.Equal(t, "WITH c0 AS (INSERT INTO a VALUES (?)), c1 AS (DELETE FROM b WHERE k = ?) UPDATE c SET x = ?", q)
	assert.Equal(t, []any{1, 2, 3}, args)
	q, args = mysqlDialect.combined(sts)
	assert.Equal(t, "INSERT INTO a VALUES (?);\nDELETE FROM b WHERE k = ?;\nUPDATE c SET x = ?", q)
	assert.Equal(t, []any{1, 2, 3}, args)
	q, args = sqliteDialect.combined(sts[:1])
	assert.Equal(t, sts[0].q, q)
	assert.Equal(t, []any{1}, args)
}
