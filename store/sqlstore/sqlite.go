package sqlstore

import (
	"database/sql"
	"time"
)

var sqliteDialect = &dialect{
	name:  "sqlite",
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
	maxConns:     8,
}
