// Package sqlite links sqlstore's driver for SQLite (modernc.org/sqlite, pure Go, no cgo), for sqlite:// URIs.
// Import it for its side effect:
//
//	import _ "github.com/vda-io/vda/store/sqlstore/sqlite"
package sqlite
