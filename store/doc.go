// Package store defines the metadata store VDA keeps its cluster state in: a
// revisioned key-value store with compare-and-swap transactions, watches and
// leases, modelled on etcd v3.
//
// Backends implement Store:
//
//   - store/etcdstore: etcd through clientv3 (production), plus an embedded
//     etcd server started in-process (the single-machine default);
//   - store/memstore: in memory, for unit tests, examples and dev mode;
//   - store/sqlstore: PostgreSQL, MySQL and SQLite.
//
// Binaries pick one by URI with Open, after importing the backend packages
// (each registers its schemes in init, like database/sql drivers):
//
//	memory://
//	embedded:///var/lib/vda/etcd
//	etcd://h1:2379,h2:2379/vda?cacert=ca.pem&cert=c.pem&key=c.key&user=u&password=p
//
// Libraries take a Store directly instead.
//
// # Model
//
// Every successful write Txn gets a new store-wide revision, strictly
// increasing. Each KV carries the revision that created it and the revision
// of its last write; a Cond on ModRevision turns a Txn into a
// compare-and-swap, and Update builds optimistic read-modify-write
// transactions on top (re-run on conflict; Tx.Assume takes a read from a
// copy the caller holds, such as a watch's, and the commit checks it like
// any read). Watch replays history from a
// revision and then follows live changes, so a consumer can List at
// revision R and Watch from R+1 without missing or repeating anything.
// Leases bind keys to a liveness: when a lease expires or is revoked, its
// keys are deleted (and watchers see the deletes).
//
// # Concurrency
//
// Every Store is safe for concurrent use. Txn is linearizable; reads see
// every Txn completed before them; watchers get every change in revision
// order without gaps; writers never wait for watchers. See Store for the
// details.
//
// # Errors
//
// Errors wrap the package's sentinels (ErrNotFound, ErrCompacted,
// ErrLeaseNotFound, ErrInvalidKey, ErrValueTooLarge, ErrInvalidArgument,
// ErrClosed, ErrConflict, ErrInvalidURI); test them with errors.Is. Every
// backend enforces the same limits (MaxKeyBytes, MaxValueBytes, MaxTxnOps,
// MaxTxnBytes) with the Validate functions, so data fits any backend.
//
// The conformance suite every backend runs is in store/storetest.
package store
