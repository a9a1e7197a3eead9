package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/vda-io/vda/store"
)

// Txn implements store.Store.
func (s *Store) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	if err := store.ValidateTxn(t); err != nil {
		return store.TxnResult{}, err
	}
	if err := s.begin(ctx, "txn"); err != nil {
		return store.TxnResult{}, err
	}
	defer s.mu.Unlock()
	for _, c := range t.Conds {
		if s.kvs[c.Key].ModRevision != c.ModRevision {
			return store.TxnResult{Revision: s.rev}, nil
		}
	}
	for _, op := range t.Ops {
		if op.Lease == store.NoLease || op.Delete {
			continue
		}
		if _, ok := s.leases[op.Lease]; !ok {
			return store.TxnResult{}, fmt.Errorf("memstore: put %s: lease %d: %w", op.Key, op.Lease, store.ErrLeaseNotFound)
		}
	}
	var events []store.Event
	for _, op := range t.Ops {
		if ev, ok := s.applyLocked(op, s.rev+1); ok {
			events = append(events, ev)
		}
	}
	s.commitLocked(events)
	return store.TxnResult{Succeeded: true, Revision: s.rev}, nil
}

// applyLocked applies one write at revision rev and returns its event;
// false if nothing changed (delete of an absent key).
func (s *Store) applyLocked(op store.Op, rev int64) (store.Event, bool) {
	old, existed := s.kvs[op.Key]
	if existed && old.Lease != store.NoLease {
		if l, ok := s.leases[old.Lease]; ok {
			delete(l.keys, op.Key)
		}
	}
	if op.Delete {
		if !existed {
			return store.Event{}, false
		}
		delete(s.kvs, op.Key)
		s.keys.remove(op.Key)
		return store.Event{Type: store.EventDelete, KV: store.KV{Key: op.Key, ModRevision: rev}}, true
	}
	kv := store.KV{
		Key:            op.Key,
		Value:          slices.Clone(op.Value),
		CreateRevision: rev,
		ModRevision:    rev,
		Version:        1,
		Lease:          op.Lease,
	}
	if existed {
		kv.CreateRevision = old.CreateRevision
		kv.Version = old.Version + 1
	} else {
		s.keys.insert(op.Key)
	}
	s.kvs[op.Key] = kv
	if op.Lease != store.NoLease {
		s.leases[op.Lease].keys[op.Key] = struct{}{}
	}
	return store.Event{Type: store.EventPut, KV: kv}, true
}

// commitLocked makes events the next revision (if there are any), records
// them for watchers and wakes them.
func (s *Store) commitLocked(events []store.Event) {
	if len(events) == 0 {
		return
	}
	s.rev++
	s.history = append(s.history, revision{rev: s.rev, events: events})
	// Compact in batches of n/8 revisions so that trimming the history
	// slice costs O(1) per write, amortized.
	if n := s.cfg.HistoryRevisions; n > 0 && s.rev-s.compacted >= n+n/8 {
		s.compactLocked(s.rev - n + 1)
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// Grant implements store.Store.
func (s *Store) Grant(ctx context.Context, ttl time.Duration) (store.LeaseID, error) {
	if err := store.ValidateTTL(ttl); err != nil {
		return 0, err
	}
	if err := s.begin(ctx, "grant"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	s.lastLease++
	l := &lease{ttl: ttl, expiry: s.cfg.Clock.Now().Add(ttl), keys: map[string]struct{}{}}
	s.leases[s.lastLease] = l
	if len(s.leases) == 1 || l.expiry.Before(s.nextExpiry) {
		s.nextExpiry = l.expiry
	}
	return s.lastLease, nil
}

// KeepAlive implements store.Store.
func (s *Store) KeepAlive(ctx context.Context, id store.LeaseID) error {
	if err := s.begin(ctx, "keepalive"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	l, ok := s.leases[id]
	if !ok {
		return fmt.Errorf("memstore: keepalive %d: %w", id, store.ErrLeaseNotFound)
	}
	l.expiry = s.cfg.Clock.Now().Add(l.ttl)
	return nil
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, id store.LeaseID) error {
	if err := s.begin(ctx, "revoke"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.leases[id]; !ok {
		return fmt.Errorf("memstore: revoke %d: %w", id, store.ErrLeaseNotFound)
	}
	s.revokeLocked(id)
	return nil
}

// revokeLocked deletes a lease and its keys, all at one revision.
func (s *Store) revokeLocked(id store.LeaseID) {
	l := s.leases[id]
	delete(s.leases, id)
	keys := make([]string, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var events []store.Event
	for _, k := range keys {
		if ev, ok := s.applyLocked(store.Op{Key: k, Delete: true}, s.rev+1); ok {
			events = append(events, ev)
		}
	}
	s.commitLocked(events)
}

// expireLocked revokes every lease whose expiry has passed. nextExpiry (a
// lower bound of every lease's expiry) spares the scan on most calls.
func (s *Store) expireLocked() {
	now := s.cfg.Clock.Now()
	if len(s.leases) == 0 || now.Before(s.nextExpiry) {
		return
	}
	var due []store.LeaseID
	var next time.Time
	for id, l := range s.leases {
		if !now.Before(l.expiry) {
			due = append(due, id)
		} else if next.IsZero() || l.expiry.Before(next) {
			next = l.expiry
		}
	}
	s.nextExpiry = next
	slices.Sort(due)
	for _, id := range due {
		s.log.Debug("lease expired", "lease", id, "keys", len(s.leases[id].keys))
		s.revokeLocked(id)
	}
}
