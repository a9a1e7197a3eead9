package monitor

import (
	"maps"
	"slices"
	"sync"

	"github.com/vda-io/vda"
)

// writtenStatuses remembers the statuses this monitor's status writes
// committed, by status key, with their revisions, until the snapshot cache
// has caught up with them; and it serializes this monitor's writes to one
// status key.
//
// A DA's status gathers the parts of several nodes, each reported by its
// own worker: their writes to the one key came in quick succession, and
// each later one failed its commit on the cache's older copy (the watch
// had not delivered the earlier write yet), then read every key of its
// batch again. A write now waits for the one before it on the same key
// and assumes what that one wrote; the commit still checks it, so a write
// by another monitor only costs a retry, as before.
type writtenStatuses struct {
	mu    sync.Mutex
	m     map[string]revStatus // by status key
	locks map[string]*keyLock  // by status key, while held or awaited
}

type revStatus struct {
	st  vda.Status
	rev int64
}

type keyLock struct {
	mu   sync.Mutex
	refs int // holders and waiters
}

// writtenPrune is the size above which record drops what the cache has.
const writtenPrune = 1024

// lock takes the locks of keys in order (so two writers never wait for
// each other) and returns their release.
func (w *writtenStatuses) lock(keys []string) (unlock func()) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	held := make([]*keyLock, len(keys))
	w.mu.Lock()
	if w.locks == nil {
		w.locks = map[string]*keyLock{}
	}
	for i, k := range keys {
		l := w.locks[k]
		if l == nil {
			l = &keyLock{}
			w.locks[k] = l
		}
		l.refs++
		held[i] = l
	}
	w.mu.Unlock()
	for _, l := range held {
		l.mu.Lock()
	}
	return func() {
		for _, l := range held {
			l.mu.Unlock()
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		for i, k := range keys {
			if held[i].refs--; held[i].refs == 0 {
				delete(w.locks, k)
			}
		}
	}
}

// record notes that the statuses sts (by status key) were committed at
// rev; cached is the revision the snapshot cache has applied, and what it
// has is dropped once there are many.
func (w *writtenStatuses) record(sts map[string]vda.Status, rev, cached int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]revStatus{}
	}
	for k, st := range sts {
		w.m[k] = revStatus{st: st, rev: rev}
	}
	if len(w.m) > writtenPrune {
		maps.DeleteFunc(w.m, func(_ string, s revStatus) bool { return s.rev <= cached })
	}
}

// get returns what this monitor last wrote to key, if it still holds it.
func (w *writtenStatuses) get(key string) (revStatus, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.m[key]
	return s, ok
}
