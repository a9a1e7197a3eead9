package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
)

func init() {
	sqlstore.RegisterDriver("postgresql", sqlstore.Driver{Open: openPostgres, Retryable: pgRetryable, Listen: pgListen})
}

func pgConfig(u *url.URL) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		// pgx's message may quote the URI, password included.
		return nil, fmt.Errorf("%w: %s: not a PostgreSQL connection URI", store.ErrInvalidURI, u.Redacted())
	}
	return cfg, nil
}

func openPostgres(_ context.Context, u *url.URL, _ hclog.Logger) (*sql.DB, error) {
	cfg, err := pgConfig(u)
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg), nil
}

// pgRetryable: serialization failure, deadlock.
func pgRetryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	return false
}

// pgListen holds one connection that LISTENs on channel and calls notify
// with each payload, until ctx is done or the connection fails. ready is
// called once the LISTEN is in place.
func pgListen(ctx context.Context, u *url.URL, channel string, ready func(), notify func(payload string)) error {
	cfg, err := pgConfig(u)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("listen connection: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
		notify(n.Payload)
	}
}
