package sqlstore_test

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

	_ "github.com/go-sql-driver/mysql"
)

// Environment variables naming the test servers; scripts/test sets them
// (through scripts/sqlservers).
const (
	envPostgres = "VDA_TEST_POSTGRES_URL"
	envMySQL    = "VDA_TEST_MYSQL_URL"
)

// backend makes a fresh, empty database (with no schema) per call and
// returns its URI.
type backend struct {
	name  string
	fresh func(t testing.TB) string
}

func backends() []backend {
	return []backend{
		{"sqlite", freshSQLite},
		{"postgres", freshPostgres},
		{"mysql", freshMySQL},
	}
}

func uniqueName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

func freshSQLite(t testing.TB) string {
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

// freshPostgres creates a schema of its own in the test database and returns
// a URI whose search_path selects it.
func freshPostgres(t testing.TB) string {
	u := serverURL(t, envPostgres)
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

// freshMySQL creates a database of its own and returns its URI.
func freshMySQL(t testing.TB) string {
	u := serverURL(t, envMySQL)
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
	db, err := sql.Open("mysql", dsn+"/")
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

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
