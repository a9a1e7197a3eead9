package sqltest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	_ "github.com/go-sql-driver/mysql" // the "mysql" driver
	_ "modernc.org/sqlite"             // the "sqlite" driver

	// The stores the databases are made for.
	_ "github.com/vda-io/vda/store/sqlstore/mysql"
	_ "github.com/vda-io/vda/store/sqlstore/postgres"
	_ "github.com/vda-io/vda/store/sqlstore/sqlite"
)

// Environment variables naming the test servers; scripts/test sets them
// (through scripts/sqlservers).
const (
	EnvPostgres = "VDA_TEST_POSTGRES_URL"
	EnvMySQL    = "VDA_TEST_MYSQL_URL"
)

// Backend makes a fresh, empty database (without the VDA schema) per call
// of Fresh and returns its URI; the database is dropped when the test ends.
type Backend struct {
	Name  string
	Fresh func(t testing.TB) string
}

// Backends lists SQLite, PostgreSQL and MySQL, in that order.
func Backends() []Backend {
	return []Backend{
		{"sqlite", FreshSQLite},
		{"postgres", FreshPostgres},
		{"mysql", FreshMySQL},
	}
}

func uniqueName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

// FreshSQLite returns the URI of a new database file in t.TempDir().
func FreshSQLite(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "vda.db")
}

func serverURL(t testing.TB, env string) *url.URL {
	t.Helper()
	raw := os.Getenv(env)
	if raw == "" {
		t.Skipf("set %s or run scripts/test, which starts a private server", env)
	}
	u, err := url.Parse(raw)
	require.NoError(t, err, "%s", env)
	return u
}

// FreshPostgres creates a schema of its own in the test database and returns
// a URI whose search_path selects it.
func FreshPostgres(t testing.TB) string {
	u := serverURL(t, EnvPostgres)
	cfg, err := pgx.ParseConfig(u.String())
	require.NoError(t, err)
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	name := uniqueName()
	adminExec(t, db, `CREATE SCHEMA `+name)
	t.Cleanup(func() {
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		adminExec(t, db, `DROP SCHEMA `+name+` CASCADE`)
	})
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// FreshMySQL creates a database of its own and returns its URI.
func FreshMySQL(t testing.TB) string {
	u := serverURL(t, EnvMySQL)
	db := openMySQLAdmin(t, u)
	defer db.Close()
	name := uniqueName()
	adminExec(t, db, `CREATE DATABASE `+name)
	t.Cleanup(func() {
		db := openMySQLAdmin(t, u)
		defer db.Close()
		adminExec(t, db, `DROP DATABASE `+name)
	})
	u.Path = "/" + name
	return u.String()
}

func openMySQLAdmin(t testing.TB, u *url.URL) *sql.DB {
	t.Helper()
	pass, _ := u.User.Password()
	dsn := u.User.Username() + ":" + pass + "@"
	if sock := u.Query().Get("socket"); sock != "" {
		dsn += "unix(" + sock + ")"
	} else {
		dsn += "tcp(" + u.Host + ")"
	}
	db, err := sql.Open("mysql", dsn+u.Path)
	require.NoError(t, err)
	return db
}

func adminExec(t testing.TB, db *sql.DB, stmt string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := db.ExecContext(ctx, stmt)
	require.NoError(t, err, stmt)
}

// Exec runs one statement on the database uri names (as returned by Fresh),
// e.g. to damage it on purpose.
func Exec(t testing.TB, uri, stmt string) {
	t.Helper()
	u, err := url.Parse(uri)
	require.NoError(t, err)
	var db *sql.DB
	switch u.Scheme {
	case "sqlite":
		db, err = sql.Open("sqlite", u.Path)
		require.NoError(t, err)
	case "postgresql", "postgres":
		cfg, err := pgx.ParseConfig(uri)
		require.NoError(t, err)
		db = stdlib.OpenDB(*cfg)
	case "mysql":
		db = openMySQLAdmin(t, u)
	default:
		t.Fatalf("sqltest: unknown scheme %q", u.Scheme)
	}
	defer db.Close()
	adminExec(t, db, stmt)
}
