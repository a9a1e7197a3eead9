package store

import (
	"context"
	"errors"
	"time"
)

// Size limits every backend enforces, so that data written to one backend can
// be moved to any other. etcd's default request limit is 1.5 MiB, which leaves
// room for a maximal value plus keys and framing.
const (
	// MaxKeyBytes is the longest key (and List/Watch prefix) in bytes.
	MaxKeyBytes = 1024
	// MaxValueBytes is the largest value in bytes.
	MaxValueBytes = 1 << 20
	// MaxTxnOps is the most Conds and the most Ops one Txn may carry
	// (etcd's default --max-txn-ops).
	MaxTxnOps = 128
	// MaxTxnBytes bounds the sum of all key and value bytes in one Txn.
	MaxTxnBytes = MaxValueBytes + 2*MaxTxnOps*MaxKeyBytes
)

// Sentinel errors. Backends wrap them with %w and context; callers test with
// errors.Is.
var (
	// ErrNotFound: Get of a key that does not exist.
	ErrNotFound = errors.New("store: key not found")
	// ErrCompacted: a Watch asked for a revision the store no longer keeps.
	ErrCompacted = errors.New("store: revision compacted")
	// ErrLeaseNotFound: the lease expired, was revoked or never existed.
	ErrLeaseNotFound = errors.New("store: lease not found")
	// ErrInvalidKey: a key or prefix is empty (keys only), too long, not
	// valid UTF-8, or contains a NUL byte.
	ErrInvalidKey = errors.New("store: invalid key")
	// ErrValueTooLarge: a value exceeds MaxValueBytes or a Txn exceeds
	// MaxTxnBytes.
	ErrValueTooLarge = errors.New("store: value too large")
	// ErrInvalidArgument: any other malformed request (too many ops, the same
	// key written twice in one Txn, a non-positive TTL, a negative limit or
	// revision).
	ErrInvalidArgument = errors.New("store: invalid argument")
	// ErrClosed: the Store or Watcher was closed.
	ErrClosed = errors.New("store: closed")
	// ErrConflict: Update gave up after too many conflicting attempts.
	ErrConflict = errors.New("store: too many conflicts")
	// ErrInvalidURI: Open could not parse the URI or knows no such scheme.
	ErrInvalidURI = errors.New("store: invalid uri")
)

// LeaseID names a lease. 0 means "no lease".
type LeaseID int64

// NoLease is the zero LeaseID: a key written with it lives until deleted.
const NoLease LeaseID = 0

// KV is one key with its value and revisions (etcd semantics: revisions are
// store-wide and strictly increasing; every successful Txn that writes gets a
// new one).
type KV struct {
	Key   string
	Value []byte // an empty value may come back as nil
	// CreateRevision is the revision of the Txn that created the key
	// (0 = absent, in conditions).
	CreateRevision int64
	// ModRevision is the revision of the last write to the key.
	ModRevision int64
	// Version counts writes since creation (1 after the first write).
	Version int64
	// Lease the key is bound to, or NoLease.
	Lease LeaseID
}

// Store is a revisioned key-value store with transactions, watches and
// leases (the subset of etcd's model that VDA needs).
//
// Concurrency guarantees, for every backend:
//   - A Store is safe for concurrent use by many goroutines.
//   - Txn is linearizable: it either applies all its Ops at one new revision
//     or none of them, and its Conds are checked against the latest state.
//   - Get, List and Revision are linearizable reads: they see every Txn that
//     completed before they were called.
//   - A Watcher delivers every change under its prefix in revision order,
//     without gaps or duplicates; the events of one Txn arrive together in
//     one WatchResponse. A consumer that falls too far behind may receive
//     ErrCompacted instead (then it re-lists and watches again).
//   - Writers never block on slow watchers.
//
// Every method takes a context; a cancelled context aborts the call with an
// error wrapping ctx.Err(). After Close every method returns ErrClosed.
//
// A Txn that fails with anything but a validation error (ErrInvalidKey,
// ErrValueTooLarge, ErrInvalidArgument) or ErrLeaseNotFound may or may not
// have been applied (e.g. the connection broke after the server committed):
// guard writes with Conds so that retrying them is safe.
type Store interface {
	// Get returns one key, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns the keys starting with prefix ("" = all keys), sorted by
	// key in byte order, at most opt.Limit of them (0 = all).
	List(ctx context.Context, prefix string, opt ListOptions) (ListResult, error)
	// Txn applies t.Ops atomically if every t.Conds holds. A failed condition
	// is not an error: it returns Succeeded=false and writes nothing.
	Txn(ctx context.Context, t Txn) (TxnResult, error)
	// Watch streams changes to keys starting with prefix. fromRevision 0
	// starts after the current revision; fromRevision N > 0 replays every
	// change with revision >= N first. If N is below the store's last
	// compaction (see Compactor), Watch returns ErrCompacted (or, if compaction races with the call, the
	// first WatchResponse carries it). The watch ends when ctx is done or the
	// Watcher is closed; its channel is then closed. A read made after a
	// response was delivered sees that response's writes (or later ones):
	// callers wait for a change by watching and then reading.
	Watch(ctx context.Context, prefix string, fromRevision int64) (Watcher, error)
	// Grant creates a lease that expires ttl after its last refresh. Backends
	// round ttl up to their granularity (etcd: whole seconds, with a server
	// minimum of a few seconds by default).
	Grant(ctx context.Context, ttl time.Duration) (LeaseID, error)
	// KeepAlive refreshes a lease once; ErrLeaseNotFound if it is gone.
	KeepAlive(ctx context.Context, id LeaseID) error
	// Revoke ends a lease now and deletes its keys; ErrLeaseNotFound if it is
	// already gone.
	Revoke(ctx context.Context, id LeaseID) error
	// Revision returns the current store revision.
	Revision(ctx context.Context) (int64, error)
	// Close releases the Store; it is idempotent. Open watchers end.
	Close() error
}

// ListOptions pages through a List.
type ListOptions struct {
	// Limit is the most keys returned; 0 means all.
	Limit int
	// StartAfter returns only keys strictly greater than it: pass the last
	// key of the previous page.
	StartAfter string
}

// ListResult is one page of a List.
type ListResult struct {
	KVs []KV
	// More is true if keys beyond the page exist.
	More bool
	// Revision is the store revision the page was read at.
	Revision int64
}

// Cond is a compare-and-swap guard: Key's ModRevision must equal ModRevision.
// ModRevision 0 means "the key must not exist".
type Cond struct {
	Key         string
	ModRevision int64
}

// Op is a write: a put of Value (bound to Lease unless NoLease), or a delete
// if Delete is true. Deleting an absent key is not an error.
type Op struct {
	Key    string
	Value  []byte
	Delete bool
	Lease  LeaseID
}

// Txn is an atomic compare-and-swap: if all Conds hold, all Ops are applied
// at one new revision. A key may be written at most once per Txn. A Txn
// without Ops does not create a revision.
type Txn struct {
	Conds []Cond
	Ops   []Op
}

// TxnResult reports a Txn.
type TxnResult struct {
	// Succeeded is false when a Cond failed; nothing was written then.
	Succeeded bool
	// Revision is the revision of the write if one was made, otherwise the
	// store revision the Conds were checked at.
	Revision int64
}

// EventType says whether an Event is a put or a delete.
type EventType int

// Event types.
const (
	EventPut EventType = iota + 1
	EventDelete
)

// String returns "put" or "delete".
func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	default:
		return "unknown"
	}
}

// Event is one change seen by a Watcher. For a delete, KV holds the key and
// ModRevision (the revision of the delete); its Value is empty.
type Event struct {
	Type EventType
	KV   KV
}

// WatchResponse is a batch of events in revision order.
type WatchResponse struct {
	Events []Event
	// Revision is the store revision of the last event in the batch (or, for
	// an error, the revision the watch had reached).
	Revision int64
	// Err, if set (e.g. ErrCompacted), is the last response: the channel is
	// closed after it.
	Err error
}

// Watcher is a running watch.
type Watcher interface {
	// Events delivers responses until the watch ends, then is closed.
	Events() <-chan WatchResponse
	// Close stops the watch; it is idempotent.
	Close() error
}

// Compactor is implemented by stores that can discard history. After
// Compact(rev), Watch from a revision below rev returns ErrCompacted (from
// rev itself still works). Like etcd, Compact at or below an earlier
// compaction returns ErrCompacted, and above the current revision
// ErrInvalidArgument.
type Compactor interface {
	Compact(ctx context.Context, rev int64) error
}
