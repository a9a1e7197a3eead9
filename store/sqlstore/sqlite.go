package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vda-io/vda/store"
)

var sqliteDialect = &dialect{
	name:  "sqlite",
	open:  openSQLite,
	nowMS: "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
	// Write transactions begin IMMEDIATE (see sqliteDSN): that takes the
	// database's write lock, so no FOR UPDATE is needed.
	forUpdate:  "",
	writeLevel: sql.LevelDefault,
	migrations: [][]string{{
		`CREATE TABLE IF NOT EXISTS vda_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS vda_state (id INTEGER PRIMARY KEY, revision INTEGER NOT NULL,
			compacted INTEGER NOT NULL, next_lease INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS vda_kv (k BLOB PRIMARY KEY, v BLOB NOT NULL,
			create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS vda_kv_lease ON vda_kv (lease)`,
		`CREATE TABLE IF NOT EXISTS vda_log (revision INTEGER NOT NULL, seq INTEGER NOT NULL, kind INTEGER NOT NULL,
			k BLOB NOT NULL, v BLOB NOT NULL, create_rev INTEGER NOT NULL, version INTEGER NOT NULL,
			lease INTEGER NOT NULL, PRIMARY KEY (revision, seq))`,
		`CREATE TABLE IF NOT EXISTS vda_lease (id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS vda_lease_expires ON vda_lease (expires_ms)`,
	}},
	initState: []string{
		`INSERT OR IGNORE INTO vda_state (id, revision, compacted, next_lease) VALUES (1, 1, 0, 1)`,
		`INSERT OR IGNORE INTO vda_schema (id, version) VALUES (1, 0)`,
	},
	// Writers in this process wake watchers directly; polling only finds
	// writes by other processes sharing the file.
	pollInterval: time.Second,
	retryable:    sqliteRetryable,
	maxConns:     8,
}

func init() { dialects["sqlite"] = sqliteDialect }

// sqlitePath extracts the file of sqlite:///abs/path.db or sqlite://rel.db.
func sqlitePath(u *url.URL) (string, error) {
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" || strings.ContainsAny(path, "?#\x00") {
		return "", fmt.Errorf("%w: %s: want sqlite:///path/to/file.db", store.ErrInvalidURI, redact(u))
	}
	return path, nil
}

// sqliteDSN: WAL so readers never wait for the writer; a busy timeout for
// writers of other processes; IMMEDIATE write transactions (read-only ones
// stay deferred) so a writer holds the write lock from its first statement.
func sqliteDSN(path string) string {
	return path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_txlock=immediate"
}

func openSQLite(_ context.Context, u *url.URL, _ hclog.Logger) (*sql.DB, error) {
	path, err := sqlitePath(u)
	if err != nil {
		return nil, err
	}
	return sql.Open("sqlite", sqliteDSN(path))
}

func sqliteRetryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff // primary result code
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}
