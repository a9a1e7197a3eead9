package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vda-io/vda/store"
)

// dialect is what differs between the SQL databases: how to connect, the
// types in the schema, and a few SQL spellings.
type dialect struct {
	name string
	// nowMS is an SQL expression for the database's clock in milliseconds
	// since the Unix epoch. Lease expiry is judged by it alone.
	nowMS string
	// forUpdate follows the SELECT of the state row in a write transaction.
	forUpdate string
	// dollar: placeholders are $1, $2... instead of ?.
	dollar bool
	// writeLevel is the isolation level of write transactions.
	writeLevel sql.IsolationLevel
	// migrations[i] turns schema version i into version i+1.
	migrations [][]string
	// initState inserts the state and schema rows unless present.
	initState []string
	// pollInterval is the default interval at which watchers check the
	// revision for writes by other clients.
	pollInterval time.Duration
	// notify: PostgreSQL LISTEN/NOTIFY wakes watchers.
	notify bool
	// combine says how a transaction's final writes are sent together.
	combine combineMode
	// maxConns is the default connection pool size.
	maxConns int
	// prepare, if set, runs before a schema is first created; it reports
	// whether it changed what new sessions see (then CreateSchema
	// reconnects).
	prepare func(ctx context.Context, db *sql.DB) (bool, error)
}

// combineMode is how several writes become one round trip.
type combineMode int

const (
	combineNone  combineMode = iota // one statement at a time
	combineCTE                      // WITH c0 AS (...), c1 AS (...) last (PostgreSQL)
	combineMulti                    // "a; b; c" (MySQL with multiStatements)
)

// dialects by URI scheme.
var dialects = map[string]*dialect{
	"postgresql": postgresDialect, "postgres": postgresDialect,
	"mysql":  mysqlDialect,
	"sqlite": sqliteDialect,
}

// dialectFor returns the dialect of a URI scheme and the driver registered
// for it.
func dialectFor(scheme string) (*dialect, Driver, error) {
	d, ok := dialects[scheme]
	if !ok {
		return nil, Driver{}, fmt.Errorf("%w: unknown scheme %q (want postgresql, postgres, mysql or sqlite)",
			store.ErrInvalidURI, scheme)
	}
	drv, ok := driverOf(d)
	if !ok {
		return nil, Driver{}, fmt.Errorf("%w: %s: this program has no %s driver: import %s/%s", store.ErrInvalidURI,
			scheme, d.name, modulePath, driverPackage[d.name])
	}
	return d, drv, nil
}

// rebind turns ? placeholders into $n for PostgreSQL and fills in the
// dialect's spellings of {now} and {forupdate}.
func (d *dialect) rebind(q string) string {
	q = strings.ReplaceAll(q, "{now}", d.nowMS)
	q = strings.ReplaceAll(q, "{forupdate}", d.forUpdate)
	if !d.dollar {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// placeholders returns "?,?,...,?" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}

// redact returns a URI without its password, for errors and logs.
func redact(u *url.URL) string { return u.Redacted() }

// isRetryable is the default: context errors are never retried.
func isRetryable(drv Driver, err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return drv.Retryable != nil && drv.Retryable(err)
}
