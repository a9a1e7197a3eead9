package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pgChannel is the LISTEN/NOTIFY channel. Its payload is "schema:revision",
// so that stores in different schemas of one database ignore each other.
const pgChannel = "vda_changes"

var postgresDialect = &dialect{
	name: "postgresql",
	// statement_timestamp() is stable within a statement, so the expiry
	// index can serve "expires_ms <= now"; clock_timestamp() is volatile.
	nowMS:      "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)",
	forUpdate:  " FOR UPDATE",
	dollar:     true,
	writeLevel: sql.LevelReadCommitted,
	migrations: [][]string{{
		`CREATE TABLE IF NOT EXISTS vda_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS vda_state (id INTEGER PRIMARY KEY, revision BIGINT NOT NULL,
			compacted BIGINT NOT NULL, next_lease BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS vda_kv (k BYTEA PRIMARY KEY, v BYTEA NOT NULL,
			create_rev BIGINT NOT NULL, mod_rev BIGINT NOT NULL, version BIGINT NOT NULL, lease BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS vda_kv_lease ON vda_kv (lease)`,
		`CREATE TABLE IF NOT EXISTS vda_log (revision BIGINT NOT NULL, seq INTEGER NOT NULL, kind SMALLINT NOT NULL,
			k BYTEA NOT NULL, v BYTEA NOT NULL, create_rev BIGINT NOT NULL, version BIGINT NOT NULL,
			lease BIGINT NOT NULL, PRIMARY KEY (revision, seq))`,
		`CREATE TABLE IF NOT EXISTS vda_lease (id BIGINT PRIMARY KEY, ttl_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS vda_lease_expires ON vda_lease (expires_ms)`,
	}},
	initState: []string{
		`INSERT INTO vda_state (id, revision, compacted, next_lease) VALUES (1, 1, 0, 1) ON CONFLICT DO NOTHING`,
		`INSERT INTO vda_schema (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING`,
	},
	pollInterval: time.Second, // NOTIFY wakes watchers; polling is the safety net
	notify:       true,
	combine:      combineCTE,
	maxConns:     16,
	prepare:      pgUserSchema,
}

// pgUserSchema makes room for the VDA tables when the current schema does
// not allow it: since PostgreSQL 15 ordinary users may not create tables in
// "public". A user who may create schemas in the database (the tutorial's
// GRANT ALL PRIVILEGES ON DATABASE gives that) then gets a schema named
// after itself, which PostgreSQL's default search_path ("$user", public)
// selects in every later session, so the tutorial's URI works unchanged.
func pgUserSchema(ctx context.Context, db *sql.DB) (bool, error) {
	var canCreate, canMakeSchema bool
	err := db.QueryRowContext(ctx, `SELECT coalesce(has_schema_privilege(current_schema(), 'CREATE'), false),
		has_database_privilege(current_database(), 'CREATE')`).Scan(&canCreate, &canMakeSchema)
	if err != nil {
		return false, fmt.Errorf("sqlstore: check schema privileges: %w", err)
	}
	if canCreate || !canMakeSchema {
		return false, nil // as is: the migration then says what is missing
	}
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS AUTHORIZATION CURRENT_USER`); err != nil {
		return false, fmt.Errorf("sqlstore: create the user's schema: %w", err)
	}
	return true, nil
}
