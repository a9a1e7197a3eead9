// Package postgres links sqlstore's driver for PostgreSQL (github.com/jackc/pgx), for the postgresql:// and postgres://
// URIs; LISTEN/NOTIFY wakes watchers.
// Import it for its side effect:
//
//	import _ "github.com/vda-io/vda/store/sqlstore/postgres"
package postgres
