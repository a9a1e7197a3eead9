// Package sqlstore implements store.Store on SQL databases: PostgreSQL,
// MySQL/MariaDB and SQLite (pure Go, no cgo). It gives the same etcd
// semantics as the other backends, so the portal and the monitor run on any
// of them unchanged.
//
// Open a store by URI, after importing this package (it registers the
// schemes with store.Register):
//
//	postgresql://user:pass@host:5432/db   (also postgres://; pgx connection parameters
//	                                        such as sslmode, host=/socket/dir or
//	                                        search_path go in the query)
//	mysql://user:pass@host:3306/db         (?socket=/path/mysqld.sock for a unix socket;
//	                                        other go-sql-driver/mysql DSN parameters, e.g. tls)
//	sqlite:///path/to/file.db
//
// The database must hold the schema first: run
//
//	vda-db --action create --db-uri URI
//
// (or call CreateSchema). A store refuses to open a database whose schema is
// missing, older (run vda-db --action upgrade) or newer than it knows.
//
// # How the etcd model maps onto SQL
//
// One row (vda_state) holds the store revision. Every write transaction
// first locks it (SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE), so writers
// are serialised across every client of the database: a Txn checks its
// conditions against the latest committed state and applies its operations at
// revision+1, which makes Txn linearizable. The writers of one Store queue
// in the process first, so the database lock sees one writer per client.
// Reads are single statements and see every committed Txn.
//
// Each write also appends its changes to a log table (vda_log) in the same
// transaction. Watchers read the log in revision order, so they see every
// change without gaps. They are woken by writes of the same process, by
// PostgreSQL LISTEN/NOTIFY, and by polling the revision (the only way on
// MySQL; a slow safety net elsewhere). Compact trims the log; a watch from a
// trimmed revision gets store.ErrCompacted.
//
// Leases live in vda_lease with an expiry computed by the database's clock
// (never the client's), so clients with skewed clocks agree. Keys of expired
// leases are hidden from reads at once and deleted, with delete events, by
// whichever client notices first: every Txn reaps expired leases before it
// checks its conditions, and each Store runs a reaper loop.
package sqlstore
