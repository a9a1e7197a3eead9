package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/store"
)

// SchemaVersion is the newest database schema this package knows: the one
// CreateSchema and UpgradeSchema leave behind, and the only one Open accepts.
const SchemaVersion = 1

// Errors about the database schema. Open returns them wrapped, with the
// command that fixes the problem.
var (
	// ErrNoSchema: the database has no VDA schema yet.
	ErrNoSchema = errors.New("sqlstore: no schema")
	// ErrSchemaOutdated: the schema is older than SchemaVersion.
	ErrSchemaOutdated = errors.New("sqlstore: schema outdated")
	// ErrSchemaTooNew: the schema was written by a newer VDA.
	ErrSchemaTooNew = errors.New("sqlstore: schema too new")
)

// tableExists is the query, per dialect, that counts tables named ?.
var tableExists = map[string]string{
	"postgresql": `SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?`,
	"mysql":      `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`,
	"sqlite":     `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`,
}

// openDB connects to the database a URI names and checks that it answers.
func openDB(ctx context.Context, uri string, log hclog.Logger) (*sql.DB, *dialect, *url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: cannot parse", store.ErrInvalidURI)
	}
	d, drv, err := dialectFor(u.Scheme)
	if err != nil {
		return nil, nil, nil, err
	}
	db, err := drv.Open(ctx, u, log)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, nil, nil, fmt.Errorf("sqlstore: connect to %s: %w", redact(u), err)
	}
	return db, d, u, nil
}

// schemaVersion returns the version of the schema in db, 0 if there is none.
func schemaVersion(ctx context.Context, db *sql.DB, d *dialect) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, d.rebind(tableExists[d.name]), "vda_schema").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: look for the schema: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	err := db.QueryRowContext(ctx, `SELECT version FROM vda_schema WHERE id = 1`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: read the schema version: %w", err)
	}
	return v, nil
}

// migrate brings the schema from version from to SchemaVersion. Every step
// is idempotent, so concurrent or interrupted runs converge.
func migrate(ctx context.Context, db *sql.DB, d *dialect, from int) error {
	for v := from; v < SchemaVersion; v++ {
		for _, stmt := range d.migrations[v] {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("sqlstore: schema version %d: %w", v+1, err)
			}
		}
		if v == 0 {
			for _, stmt := range d.initState {
				if _, err := db.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("sqlstore: schema version 1: %w", err)
				}
			}
		}
		if _, err := db.ExecContext(ctx, d.rebind(`UPDATE vda_schema SET version = ? WHERE id = 1 AND version < ?`),
			v+1, v+1); err != nil {
			return fmt.Errorf("sqlstore: record schema version %d: %w", v+1, err)
		}
	}
	return nil
}

// CreateSchema creates the VDA schema in the database uri names, or upgrades
// an older one, and returns the resulting version. It is idempotent: on a
// database that is already current it changes nothing. It refuses a schema
// newer than SchemaVersion.
func CreateSchema(ctx context.Context, uri string) (int, error) {
	db, d, u, err := openDB(ctx, uri, hclog.NewNullLogger())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	v, err := schemaVersion(ctx, db, d)
	if err != nil {
		return 0, err
	}
	if v > SchemaVersion {
		return v, tooNew(u, v)
	}
	if v == 0 && d.prepare != nil {
		changed, err := d.prepare(ctx, db)
		if err != nil {
			return 0, err
		}
		if changed { // sessions resolve their search_path anew
			_ = db.Close()
			if db, d, _, err = openDB(ctx, uri, hclog.NewNullLogger()); err != nil {
				return 0, err
			}
			defer db.Close()
		}
	}
	if err := migrate(ctx, db, d, v); err != nil {
		return v, err
	}
	return schemaVersion(ctx, db, d)
}

// UpgradeSchema upgrades an existing schema to SchemaVersion and returns the
// versions before and after. A database without a schema is an error
// (ErrNoSchema): create it with CreateSchema.
func UpgradeSchema(ctx context.Context, uri string) (from, to int, err error) {
	db, d, u, err := openDB(ctx, uri, hclog.NewNullLogger())
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	from, err = schemaVersion(ctx, db, d)
	switch {
	case err != nil:
		return 0, 0, err
	case from == 0:
		return 0, 0, noSchema(u)
	case from > SchemaVersion:
		return from, from, tooNew(u, from)
	}
	if err := migrate(ctx, db, d, from); err != nil {
		return from, from, err
	}
	to, err = schemaVersion(ctx, db, d)
	return from, to, err
}

// ReadSchemaVersion returns the schema version of the database uri names; 0
// means it has no schema.
func ReadSchemaVersion(ctx context.Context, uri string) (int, error) {
	db, d, _, err := openDB(ctx, uri, hclog.NewNullLogger())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return schemaVersion(ctx, db, d)
}

// checkSchema is what Open requires: exactly SchemaVersion.
func checkSchema(ctx context.Context, db *sql.DB, d *dialect, u *url.URL) error {
	v, err := schemaVersion(ctx, db, d)
	switch {
	case err != nil:
		return err
	case v == 0:
		return noSchema(u)
	case v < SchemaVersion:
		return fmt.Errorf("%w: %s has schema version %d, this VDA needs %d: run vda-db --action upgrade --db-uri %s",
			ErrSchemaOutdated, redact(u), v, SchemaVersion, redact(u))
	case v > SchemaVersion:
		return tooNew(u, v)
	}
	return nil
}

func noSchema(u *url.URL) error {
	return fmt.Errorf("%w in %s: run vda-db --action create --db-uri %s", ErrNoSchema, redact(u), redact(u))
}

func tooNew(u *url.URL, v int) error {
	return fmt.Errorf("%w: %s has schema version %d, this VDA knows up to %d: upgrade VDA",
		ErrSchemaTooNew, redact(u), v, SchemaVersion)
}
