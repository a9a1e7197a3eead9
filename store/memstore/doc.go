// Package memstore is an in-memory store.Store with the same semantics as
// the etcd backend: store-wide revisions, compare-and-swap transactions,
// watches that replay kept history, compaction, and leases whose expiry
// follows an injectable Clock. It is meant for unit tests, examples and dev
// mode; nothing survives Close.
//
// Opening "memory://" with store.Open (after importing this package) gives a
// fresh, empty Store.
package memstore
