package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/go-hclog"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
)

func init() {
	sqlstore.RegisterDriver("sqlite", sqlstore.Driver{Open: openSQLite, Retryable: sqliteRetryable})
}

// sqlitePath extracts the file of sqlite:///abs/path.db or sqlite://rel.db.
func sqlitePath(u *url.URL) (string, error) {
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" || strings.ContainsAny(path, "?#\x00") {
		return "", fmt.Errorf("%w: %s: want sqlite:///path/to/file.db", store.ErrInvalidURI, u.Redacted())
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
