// Package mysql links sqlstore's driver for MySQL and MariaDB (github.com/go-sql-driver/mysql), for
// mysql:// URIs.
// Import it for its side effect:
//
//	import _ "github.com/vda-io/vda/store/sqlstore/mysql"
package mysql
