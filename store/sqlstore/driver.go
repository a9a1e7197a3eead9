package sqlstore

import (
	"context"
	"database/sql"
	"net/url"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/store"
)

// Driver is what a database's Go driver contributes to its dialect. The
// packages postgres, mysql and sqlite under this one register theirs from
// init, so a program links only the drivers it imports:
//
//	import _ "github.com/vda-io/vda/store/sqlstore/postgres"
type Driver struct {
	// Open returns a handle on the database a URI names (it need not
	// connect yet). Errors about the URI wrap store.ErrInvalidURI and never
	// show its password.
	Open func(ctx context.Context, u *url.URL, log hclog.Logger) (*sql.DB, error)
	// Retryable reports errors after which a write transaction that did not
	// commit can safely be run again (deadlock, busy database).
	Retryable func(error) bool
	// Listen (PostgreSQL) holds one connection that listens on channel and
	// calls notify with each payload until ctx is done or the connection
	// fails; ready is called once it listens. Nil where the database has no
	// notifications.
	Listen func(ctx context.Context, u *url.URL, channel string, ready func(), notify func(payload string)) error
}

const modulePath = "github.com/vda-io/vda/store/sqlstore"

// driverPackage names the package under sqlstore that registers a
// dialect's driver.
var driverPackage = map[string]string{"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// RegisterDriver makes the dialect ("postgresql", "mysql" or "sqlite")
// usable with drv and registers its URI schemes with store.Register. It
// panics, like sql.Register, on an unknown dialect, a nil Open or a second
// registration: programming errors caught at start-up.
func RegisterDriver(dialectName string, drv Driver) {
	if _, ok := driverPackage[dialectName]; !ok {
		panic("sqlstore: RegisterDriver of unknown dialect " + dialectName)
	}
	if drv.Open == nil {
		panic("sqlstore: RegisterDriver of nil Open for " + dialectName)
	}
	driversMu.Lock()
	if _, dup := drivers[dialectName]; dup {
		driversMu.Unlock()
		panic("sqlstore: RegisterDriver called twice for " + dialectName)
	}
	drivers[dialectName] = drv
	driversMu.Unlock()
	for scheme, d := range dialects {
		if d.name == dialectName {
			store.Register(scheme, openURI)
		}
	}
}

func driverOf(d *dialect) (Driver, bool) {
	driversMu.RLock()
	defer driversMu.RUnlock()
	drv, ok := drivers[d.name]
	return drv, ok
}
