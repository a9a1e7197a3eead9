package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/store"
)

var mysqlDialect = &dialect{
	name: "mysql",
	open: openMySQL,
	// The session time zone is UTC (see mysqlConfig), so UNIX_TIMESTAMP of
	// NOW is exact even around daylight-saving changes.
	nowMS:     "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
	forUpdate: " FOR UPDATE",
	// READ COMMITTED: every statement after the state row lock reads the
	// latest commits, whatever snapshot the locking statement itself used.
	writeLevel: sql.LevelReadCommitted,
	// Indexes are declared inline: MySQL (unlike MariaDB) has no CREATE
	// INDEX IF NOT EXISTS. VARBINARY compares bytes, as etcd orders keys.
	migrations: [][]string{{
		`CREATE TABLE IF NOT EXISTS vda_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS vda_state (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL,
			compacted BIGINT NOT NULL, next_lease BIGINT NOT NULL) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS vda_kv (k VARBINARY(1024) NOT NULL PRIMARY KEY, v LONGBLOB NOT NULL,
			create_rev BIGINT NOT NULL, mod_rev BIGINT NOT NULL, version BIGINT NOT NULL, lease BIGINT NOT NULL,
			INDEX vda_kv_lease (lease)) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS vda_log (revision BIGINT NOT NULL, seq INTEGER NOT NULL, kind SMALLINT NOT NULL,
			k VARBINARY(1024) NOT NULL, v LONGBLOB NOT NULL, create_rev BIGINT NOT NULL, version BIGINT NOT NULL,
			lease BIGINT NOT NULL, PRIMARY KEY (revision, seq)) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS vda_lease (id BIGINT PRIMARY KEY, ttl_ms BIGINT NOT NULL,
			expires_ms BIGINT NOT NULL, INDEX vda_lease_expires (expires_ms)) ENGINE=InnoDB`,
	}},
	initState: []string{
		`INSERT IGNORE INTO vda_state (id, revision, compacted, next_lease) VALUES (1, 1, 0, 1)`,
		`INSERT IGNORE INTO vda_schema (id, version) VALUES (1, 0)`,
	},
	pollInterval: 50 * time.Millisecond, // no notifications: polling is how watchers learn of writes
	combine:      combineMulti,
	retryable:    mysqlRetryable,
	maxConns:     16,
}

func init() { dialects["mysql"] = mysqlDialect }

// mysqlConfig turns mysql://user:pass@host:port/db?params into a driver
// config. ?socket=PATH connects over a unix socket; the other parameters are
// go-sql-driver/mysql DSN parameters.
func mysqlConfig(u *url.URL) (*mysql.Config, error) {
	q := u.Query()
	socket := q.Get("socket")
	q.Del("socket")
	cfg := mysql.NewConfig()
	if len(q) > 0 {
		parsed, err := mysql.ParseDSN("/?" + q.Encode())
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", store.ErrInvalidURI, redact(u), err)
		}
		cfg = parsed
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	switch {
	case socket != "":
		cfg.Net, cfg.Addr = "unix", socket
	case u.Host != "":
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "3306")
		}
		cfg.Net, cfg.Addr = "tcp", host
	default:
		return nil, fmt.Errorf("%w: %s: no host and no ?socket=", store.ErrInvalidURI, redact(u))
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return nil, fmt.Errorf("%w: %s: want one database name in the path", store.ErrInvalidURI, redact(u))
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.ClientFoundRows = true   // KeepAlive counts matched rows, not changed ones
	cfg.InterpolateParams = true // one round trip per statement instead of three
	// A write transaction's final statements go in one round trip. Every
	// value is a bound (interpolated, escaped) parameter, never SQL text.
	cfg.MultiStatements = true
	return cfg, nil
}

func openMySQL(_ context.Context, u *url.URL, log hclog.Logger) (*sql.DB, error) {
	cfg, err := mysqlConfig(u)
	if err != nil {
		return nil, err
	}
	cfg.Logger = mysqlLogger{log}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", store.ErrInvalidURI, redact(u), err)
	}
	return sql.OpenDB(conn), nil
}

// mysqlLogger sends the driver's messages to hclog instead of stderr.
type mysqlLogger struct{ log hclog.Logger }

func (l mysqlLogger) Print(v ...any) { l.log.Debug("mysql driver", "msg", fmt.Sprint(v...)) }

// mysqlRetryable: deadlock, lock wait timeout.
func mysqlRetryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	return false
}
