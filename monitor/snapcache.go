package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// SnapshotCache keeps a Snapshot of everything under vda.Prefix current
// from a store watch: one List when it starts and whenever its watch
// cannot resume where it stopped (the revision was compacted), otherwise
// one decode per changed key. A Snapshot it returns is immutable and at
// one revision, and costs no copy of the objects: the cache copies a map
// of pointers before its first write after a Snapshot shares it.
//
// Its snapshots hold what DecodeSnapshot of a List at the same revision
// holds, except Revision: that is the revision of the last change under
// vda.Prefix the cache applied (a List's is the store's, which other
// keys may have moved on).
type SnapshotCache struct {
	s   store.Store
	cfg SnapshotCacheConfig

	mu      sync.Mutex
	st      *state        // nil until the first List
	last    *Snapshot     // the view of st, nil if st changed since
	prev    *Snapshot     // the last view of st (its index may be reused)
	updated chan struct{} // closed and replaced when st changes
	lists   int           // full Lists applied
}

// SnapshotCacheConfig configures a SnapshotCache.
type SnapshotCacheConfig struct {
	// OnChange, if set, is called from Run after the cache applied
	// changes; specs is false if only statuses and monitor membership
	// changed (as the monitor's own writes do), unless a status made a
	// DA's primary ready (its controller's part, or its port's on an
	// exporter, healthy at the DA's epoch: secondaries wait for that, see
	// admission). After a List, specs is true.
	OnChange func(specs bool)
	// BackoffMin and BackoffMax bound the wait between failed Lists and
	// Watches (defaults 50 ms and 5 s).
	BackoffMin, BackoffMax time.Duration
	Logger                 hclog.Logger
}

// NewSnapshotCache returns a cache of s; Run fills it and keeps it current.
func NewSnapshotCache(s store.Store, cfg SnapshotCacheConfig) *SnapshotCache {
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 50 * time.Millisecond
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(cfg.BackoffMin, 5*time.Second)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &SnapshotCache{s: s, cfg: cfg, updated: make(chan struct{})}
}

// Run lists and watches the store until ctx ends, and returns ctx's error.
func (c *SnapshotCache) Run(ctx context.Context) error {
	var backoff time.Duration
	fail := func(what string, err error) {
		backoff = nextBackoff(backoff, c.cfg.BackoffMin, c.cfg.BackoffMax)
		log := c.cfg.Logger.Debug
		if what == "list" { // the monitor waits for it: say why
			log = c.cfg.Logger.Warn
		}
		log("snapshot cache: "+what+" failed", "error", err, "retry_in", backoff)
		sleepCtx(ctx, backoff)
	}
	relist := true
	for ctx.Err() == nil {
		if relist {
			if err := c.reload(ctx); err != nil {
				fail("list", err)
				continue
			}
			relist = false
		}
		w, err := c.s.Watch(ctx, vda.Prefix, c.revision()+1)
		if errors.Is(err, store.ErrCompacted) {
			c.cfg.Logger.Info("snapshot cache: watch compacted, listing again", "error", err)
			relist = true
			continue
		}
		if err != nil {
			fail("watch", err)
			continue
		}
		delivered, err := c.follow(w)
		_ = w.Close()
		switch {
		case errors.Is(err, store.ErrCompacted):
			c.cfg.Logger.Info("snapshot cache: watch compacted, listing again", "error", err)
			relist = true
		case delivered:
			backoff = 0 // resume from the last revision applied
		case ctx.Err() == nil && err != nil:
			fail("watch", err)
		case ctx.Err() == nil:
			fail("watch", errors.New("the watch ended without events"))
		}
	}
	return ctx.Err()
}

// reload replaces the state with a List of the store.
func (c *SnapshotCache) reload(ctx context.Context) error {
	res, err := c.s.List(ctx, vda.Prefix, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("monitor: snapshot: %w", err)
	}
	st := newState()
	for _, kv := range res.KVs {
		st.apply(store.Event{Type: store.EventPut, KV: kv})
	}
	st.rev = max(st.rev, res.Revision)
	c.mu.Lock()
	c.st, c.last, c.prev = st, nil, nil
	c.lists++
	c.changedLocked()
	c.mu.Unlock()
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(true)
	}
	return nil
}

// follow applies w's responses until it ends; it returns whether any
// arrived, and the error that ended it.
func (c *SnapshotCache) follow(w store.Watcher) (bool, error) {
	delivered := false
	for resp := range w.Events() {
		if resp.Err != nil {
			return delivered, resp.Err
		}
		delivered = true
		specs := false
		c.mu.Lock()
		for _, ev := range resp.Events {
			if specs || isSpec(ev.KV.Key) {
				c.st.apply(ev)
				specs = true
				continue
			}
			specs = c.applyStatus(ev)
		}
		c.st.rev = max(c.st.rev, resp.Revision)
		c.last = nil
		c.changedLocked()
		c.mu.Unlock()
		if c.cfg.OnChange != nil {
			c.cfg.OnChange(specs)
		}
	}
	return delivered, nil
}

// applyStatus applies ev, the write of a status or a member key, and
// reports whether it made a DA's primary ready (see opensGate).
func (c *SnapshotCache) applyStatus(ev store.Event) bool {
	tail, ok := strings.CutPrefix(ev.KV.Key, vda.PrefixStatus)
	if !ok || ev.Type == store.EventDelete {
		c.st.apply(ev)
		return false
	}
	specKey := vda.Prefix + tail
	old := c.st.statuses.m[specKey]
	c.st.apply(ev)
	return opensGate(specKey, old, c.st.statuses.m[specKey], c.st.das.m, c.st.exps.m)
}

// status returns the cache's copy of the status of specKey and its
// ModRevision (0 and a zero Status: there is none), or false if the cache
// has no copy it can vouch for (no cache, before its first List, or the
// stored status did not decode). The copy is shared: read only.
func (c *SnapshotCache) status(specKey string) (vda.Status, int64, bool) {
	if c == nil { // a Monitor put together by hand in a test
		return vda.Status{}, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return vda.Status{}, 0, false
	}
	if _, bad := c.st.bad[vda.KeyStatus(specKey)]; bad {
		return vda.Status{}, 0, false
	}
	return c.st.statuses.m[specKey], c.st.statusRevs[specKey], true
}

// specRevision returns the ModRevision of the spec at specKey as the
// cache holds it, or false if it holds none it can vouch for (no cache,
// before its first List, a key deleted, malformed or of a kind the cache
// does not decode).
func (c *SnapshotCache) specRevision(specKey string) (int64, bool) {
	if c == nil {
		return 0, false
	}
	kind, tail, _ := strings.Cut(strings.TrimPrefix(specKey, vda.Prefix), "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return 0, false
	}
	switch kind {
	case "dn":
		return revOf(c.st.dns.m, tail)
	case "cn":
		return revOf(c.st.cns.m, tail)
	case "da":
		return revOf(c.st.das.m, tail)
	case "pd":
		return revOf(c.st.pds.m, specKey)
	case "exp":
		return revOf(c.st.exps.m, specKey)
	case "snap":
		return revOf(c.st.snaps.m, specKey)
	case "clone":
		return revOf(c.st.clones.m, specKey)
	}
	return 0, false
}

func revOf[T any](m map[string]*Object[T], key string) (int64, bool) {
	o, ok := m[key]
	if !ok {
		return 0, false
	}
	return o.ModRevision, true
}

// diskArray returns the cache's copy of the DA named name, false if it has
// none (see specRevision). The copy is shared: read only.
func (c *SnapshotCache) diskArray(name string) (*Object[vda.DiskArray], bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return nil, false
	}
	o, ok := c.st.das.m[name]
	return o, ok
}

// isSpec tells a key whose change needs a round from a status or a
// monitor's membership.
func isSpec(key string) bool {
	return !strings.HasPrefix(key, vda.PrefixStatus) && !strings.HasPrefix(key, MembersPrefix)
}

func (c *SnapshotCache) changedLocked() {
	close(c.updated)
	c.updated = make(chan struct{})
}

// revision is the last revision the cache applied (0 before its first
// List, or without a cache).
func (c *SnapshotCache) revision() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return 0
	}
	return c.st.rev
}

// Snapshot returns the cache's current snapshot, waiting for its first
// List (or for ctx).
func (c *SnapshotCache) Snapshot(ctx context.Context) (*Snapshot, error) { return c.AtLeast(ctx, 0) }

// AtLeast returns a snapshot at revision rev or later, waiting for the
// watch to deliver it (or for ctx). rev should be the revision of a write
// under vda.Prefix: the cache learns of no other.
func (c *SnapshotCache) AtLeast(ctx context.Context, rev int64) (*Snapshot, error) {
	for {
		c.mu.Lock()
		if c.st != nil && c.st.rev >= rev {
			snap, from := c.viewLocked()
			c.mu.Unlock()
			if from != nil {
				// Outside the lock: the index may take a while to build.
				snap.indexOnce.Do(func() { snap.ix = from.index() })
			}
			return snap, nil
		}
		updated := c.updated
		c.mu.Unlock()
		select {
		case <-updated:
		case <-ctx.Done():
			return nil, fmt.Errorf("monitor: snapshot at revision %d: %w", rev, ctx.Err())
		}
	}
}

// viewLocked returns the view of the state, and the earlier view whose
// index it can share if it is new and no PD, DA or exporter changed since.
func (c *SnapshotCache) viewLocked() (*Snapshot, *Snapshot) {
	if c.last != nil {
		return c.last, nil
	}
	snap, specsChanged := c.st.view()
	from := c.prev
	if specsChanged {
		from = nil
	}
	c.last, c.prev = snap, snap
	return snap, from
}
