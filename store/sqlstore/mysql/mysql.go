package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
)

func init() {
	sqlstore.RegisterDriver("mysql", sqlstore.Driver{Open: openMySQL, Retryable: mysqlRetryable})
}

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
			return nil, fmt.Errorf("%w: %s: %v", store.ErrInvalidURI, u.Redacted(), err)
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
		return nil, fmt.Errorf("%w: %s: no host and no ?socket=", store.ErrInvalidURI, u.Redacted())
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return nil, fmt.Errorf("%w: %s: want one database name in the path", store.ErrInvalidURI, u.Redacted())
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
		return nil, fmt.Errorf("%w: %s: %v", store.ErrInvalidURI, u.Redacted(), err)
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
