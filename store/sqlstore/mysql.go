package sqlstore

import (
	"database/sql"
	"time"
)

var mysqlDialect = &dialect{
	name: "mysql",
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
	maxConns:     16,
}
