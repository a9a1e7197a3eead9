package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// UpdateMaxAttempts is how many times Update runs fn before giving up with
// ErrConflict.
const UpdateMaxAttempts = 1000

// Tx is the view of the store that an Update function sees: reads are
// recorded, writes are buffered and visible to later reads of the same Tx.
// A Tx is used by one goroutine and only during its Update call.
type Tx struct {
	ctx     context.Context
	s       Store
	attempt int
	reads   map[string]KV // ModRevision 0 = read as absent
	writes  map[string]Op
	order   []string // write order, for a deterministic Txn
}

// Attempt is how many times Update ran its function before this run: 0 on
// the first run, more after conflicts.
func (tx *Tx) Attempt() int { return tx.attempt }

// Assume records kv as read without asking the store, for a caller that
// holds a copy it expects to be current (one a watch delivered, at
// kv.ModRevision; 0 for a key it knows to be absent). Like any read it is
// guarded at commit, so if the copy was stale the commit fails and Update
// runs the function again: assume only on the first attempt (Attempt),
// or a stale copy fails every one. Get then returns kv (its Value as
// given, which may be left out by a caller that does not need it). A key
// this Tx already read or wrote is left as it is.
//
// A function that decides from assumed reads that nothing needs writing
// must still return nil, not an error: the commit of a Txn without Ops
// checks the guards (and writes nothing), which is what proves the copy
// was current.
func (tx *Tx) Assume(kv KV) {
	if _, ok := tx.reads[kv.Key]; ok {
		return
	}
	if _, ok := tx.writes[kv.Key]; ok {
		return
	}
	tx.reads[kv.Key] = kv
}

// Get returns the key as of this Tx: its own buffered write if any,
// otherwise the store's value, which is then guarded at commit.
// Repeated reads of a key return the first value read.
func (tx *Tx) Get(key string) (KV, error) {
	if op, ok := tx.writes[key]; ok {
		if op.Delete {
			return KV{}, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return KV{Key: key, Value: op.Value, Lease: op.Lease}, nil
	}
	kv, err := tx.read(key)
	if err != nil {
		return KV{}, err
	}
	if kv.ModRevision == 0 {
		return KV{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return kv, nil
}

func (tx *Tx) read(key string) (KV, error) {
	if kv, ok := tx.reads[key]; ok {
		return kv, nil
	}
	kv, err := tx.s.Get(tx.ctx, key)
	switch {
	case err == nil:
	case isNotFound(err):
		kv = KV{Key: key}
	default:
		return KV{}, err
	}
	tx.reads[key] = kv
	return kv, nil
}

// List returns every key under prefix as of this Tx (store state merged with
// the Tx's buffered writes), sorted by key. The keys it returns are guarded
// at commit; a key created under prefix by someone else after the List is
// not (there is no range guard), so do not rely on List to prove absence:
// Get the specific key for that.
func (tx *Tx) List(prefix string) ([]KV, error) {
	res, err := tx.s.List(tx.ctx, prefix, ListOptions{})
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]KV, len(res.KVs))
	for _, kv := range res.KVs {
		if prev, ok := tx.reads[kv.Key]; ok {
			kv = prev // repeatable reads
		} else {
			tx.reads[kv.Key] = kv
		}
		if kv.ModRevision != 0 {
			byKey[kv.Key] = kv
		}
	}
	for key, op := range tx.writes {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		if op.Delete {
			delete(byKey, key)
		} else {
			byKey[key] = KV{Key: key, Value: op.Value, Lease: op.Lease}
		}
	}
	out := make([]KV, 0, len(byKey))
	for _, kv := range byKey {
		out = append(out, kv)
	}
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Put buffers a write of value to key (without a lease).
func (tx *Tx) Put(key string, value []byte) { tx.PutWithLease(key, value, NoLease) }

// PutWithLease buffers a write of value to key, bound to lease.
func (tx *Tx) PutWithLease(key string, value []byte, lease LeaseID) {
	tx.write(Op{Key: key, Value: slices.Clone(value), Lease: lease})
}

// Delete buffers a delete of key.
func (tx *Tx) Delete(key string) { tx.write(Op{Key: key, Delete: true}) }

func (tx *Tx) write(op Op) {
	if _, ok := tx.writes[op.Key]; !ok {
		tx.order = append(tx.order, op.Key)
	}
	tx.writes[op.Key] = op
}

func (tx *Tx) txn() Txn {
	var t Txn
	for key, kv := range tx.reads {
		t.Conds = append(t.Conds, Cond{Key: key, ModRevision: kv.ModRevision})
	}
	slices.SortFunc(t.Conds, func(a, b Cond) int { return strings.Compare(a.Key, b.Key) })
	for _, key := range tx.order {
		t.Ops = append(t.Ops, tx.writes[key])
	}
	return t
}

// Update runs fn in a software transaction (like etcd's STM with
// serializable isolation): every key fn reads is recorded with its
// revision, fn's writes are buffered, and on return they are committed in
// one Txn guarded by a Cond on every key read. If another writer changed a
// read key in between, fn runs again on fresh data (after a short random
// pause), up to UpdateMaxAttempts times (then ErrConflict). If fn returns
// an error, nothing is written and Update returns that error unchanged.
// fn must have no side effects besides the Tx, since it may run many times.
// A Tx may read and write at most MaxTxnOps keys each.
func Update(ctx context.Context, s Store, fn func(tx *Tx) error) error {
	_, err := UpdateRev(ctx, s, fn)
	return err
}

// UpdateRev is Update that also returns the revision of the commit that
// succeeded: its writes' ModRevision if it wrote, else the revision its
// reads were checked at.
func UpdateRev(ctx context.Context, s Store, fn func(tx *Tx) error) (int64, error) {
	var pause time.Duration
	for attempt := 0; attempt < UpdateMaxAttempts; attempt++ {
		tx := &Tx{ctx: ctx, s: s, attempt: attempt, reads: map[string]KV{}, writes: map[string]Op{}}
		if err := fn(tx); err != nil {
			return 0, err
		}
		res, err := s.Txn(ctx, tx.txn())
		if err != nil {
			return 0, fmt.Errorf("store: update commit: %w", err)
		}
		if res.Succeeded {
			return res.Revision, nil
		}
		pause = min(max(2*pause, 100*time.Microsecond), 20*time.Millisecond)
		if err := sleepCtx(ctx, rand.N(pause)+1); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w: update gave up after %d attempts", ErrConflict, UpdateMaxAttempts)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	// An ended context wins over a pause that is also over (select would
	// pick either).
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: update: %w", err)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("store: update: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
