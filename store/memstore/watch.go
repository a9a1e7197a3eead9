package memstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/vda-io/vda/store"
)

// maxBatchEvents bounds one WatchResponse (whole revisions are never split).
const maxBatchEvents = 1000

type watcher struct {
	s      *Store
	prefix string
	ch     chan store.WatchResponse
	stop   chan struct{}
	once   sync.Once
	exited chan struct{}
}

var _ store.Watcher = (*watcher)(nil)

// Watch implements store.Store. Each watcher has its own goroutine that
// reads the kept history from its next revision, so writers never wait for
// it; one that falls behind the kept history gets store.ErrCompacted.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (store.Watcher, error) {
	if err := store.ValidateWatch(prefix, fromRevision); err != nil {
		return nil, err
	}
	if err := s.begin(ctx, "watch"); err != nil {
		return nil, err
	}
	if fromRevision == 0 {
		fromRevision = s.rev + 1
	}
	if fromRevision < s.compacted {
		compacted := s.compacted
		s.mu.Unlock()
		return nil, fmt.Errorf("memstore: watch from %d (compacted at %d): %w", fromRevision, compacted, store.ErrCompacted)
	}
	w := &watcher{
		s:      s,
		prefix: prefix,
		ch:     make(chan store.WatchResponse),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go w.run(ctx, fromRevision)
	return w, nil
}

func (w *watcher) Events() <-chan store.WatchResponse { return w.ch }

func (w *watcher) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.exited
	return nil
}

func (w *watcher) run(ctx context.Context, next int64) {
	defer w.s.wg.Done()
	defer close(w.exited)
	defer close(w.ch)
	for {
		resp, notify, ok := w.collect(&next)
		if !ok {
			return
		}
		if len(resp.Events) > 0 || resp.Err != nil {
			select {
			case w.ch <- resp:
			case <-ctx.Done():
				return
			case <-w.stop:
				return
			case <-w.s.done:
				return
			}
			if resp.Err != nil {
				return
			}
			continue // there may be more history to send
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		}
	}
}

// collect gathers the events from revision *next on that match the prefix,
// advancing *next past what it read. It returns the channel that signals the
// next write, and false if the store is closed.
func (w *watcher) collect(next *int64) (store.WatchResponse, <-chan struct{}, bool) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.WatchResponse{}, nil, false
	}
	if *next < s.compacted {
		err := fmt.Errorf("memstore: watch fell behind to %d (compacted at %d): %w", *next, s.compacted, store.ErrCompacted)
		return store.WatchResponse{Revision: *next - 1, Err: err}, nil, true
	}
	i, _ := slices.BinarySearchFunc(s.history, *next, func(r revision, rev int64) int {
		return compareInt(r.rev, rev)
	})
	var resp store.WatchResponse
	for ; i < len(s.history) && len(resp.Events) < maxBatchEvents; i++ {
		r := s.history[i]
		for _, ev := range r.events {
			if strings.HasPrefix(ev.KV.Key, w.prefix) {
				ev.KV = cloneKV(ev.KV)
				resp.Events = append(resp.Events, ev)
				resp.Revision = r.rev
			}
		}
		*next = r.rev + 1
	}
	return resp, s.notify, true
}
