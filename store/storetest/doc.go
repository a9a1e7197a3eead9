// Package storetest is the conformance suite every store.Store backend runs,
// and the benchmarks they share.
//
// A backend's test calls
//
//	storetest.Run(t, func(t *testing.T) store.Store { return newEmptyStore(t) })
//
// The factory is called once per subtest (subtests run in parallel) and must
// return a fresh store whose keyspace is empty and private to that subtest;
// the suite closes it. Revisions may be shared with other subtests (e.g.
// several etcd key prefixes on one server), so the suite only relies on
// revisions increasing, never on them being consecutive.
//
// Keys must sort in byte order (SQL backends need a binary collation), and
// writers must never wait for watchers.
//
// Lease tests use one-second TTLs, so a backend whose granularity is coarser
// (etcd rounds up to its minimum TTL) must be configured to allow them
// (etcd: a short election timeout) or the suite takes longer.
package storetest
