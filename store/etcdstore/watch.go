package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vda-io/vda/store"
)

type watcher struct {
	s      *Store
	ch     chan store.WatchResponse
	cancel context.CancelFunc
	once   sync.Once
	exited chan struct{}
}

var _ store.Watcher = (*watcher)(nil)

// Watch implements store.Store. A compacted fromRevision is detected before
// the watch starts (by a read at that revision) so that it is returned
// directly; a compaction racing with the call arrives as the first
// response's Err instead. The watch requires a leader: a member cut off
// from its cluster ends the watch with an error rather than going silent.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (store.Watcher, error) {
	if err := store.ValidateWatch(prefix, fromRevision); err != nil {
		return nil, err
	}
	if err := s.begin(ctx, "watch"); err != nil {
		return nil, err
	}
	start, end := s.keyRange(prefix)
	if fromRevision > 0 {
		_, err := s.cli.Get(ctx, start, clientv3.WithRev(fromRevision), clientv3.WithCountOnly())
		if err != nil && !errors.Is(err, rpctypes.ErrFutureRev) { // watching the future is fine
			return nil, s.mapErr(ctx, fmt.Sprintf("watch from %d", fromRevision), err)
		}
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	opts := []clientv3.OpOption{clientv3.WithRange(end)}
	if fromRevision > 0 {
		opts = append(opts, clientv3.WithRev(fromRevision))
	}
	wch := s.cli.Watch(wctx, start, opts...)
	w := &watcher{s: s, ch: make(chan store.WatchResponse), cancel: cancel, exited: make(chan struct{})}
	s.mu.Lock()
	if s.closed.Load() { // Close ran since begin: it will not cancel w
		s.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("etcdstore: watch: %w", store.ErrClosed)
	}
	s.watchers[w] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go w.run(wctx, wch)
	return w, nil
}

func (w *watcher) Events() <-chan store.WatchResponse { return w.ch }

func (w *watcher) Close() error {
	w.once.Do(w.cancel)
	<-w.exited
	return nil
}

func (w *watcher) run(ctx context.Context, wch clientv3.WatchChan) {
	defer w.s.wg.Done()
	defer func() {
		w.s.mu.Lock()
		delete(w.s.watchers, w)
		w.s.mu.Unlock()
	}()
	defer close(w.exited)
	defer close(w.ch)
	defer w.cancel()
	for resp := range wch {
		out, last := w.convert(ctx, resp)
		if len(out.Events) == 0 && out.Err == nil {
			continue // created or progress notification
		}
		if len(out.Events) > 0 && w.s.single {
			w.s.delivered(out.Revision) // before the consumer can read on it
		}
		select {
		case w.ch <- out:
		case <-ctx.Done():
			return
		case <-w.s.done:
			return
		}
		if last {
			return
		}
	}
}

// convert translates one etcd response; last reports that it ends the watch.
func (w *watcher) convert(ctx context.Context, resp clientv3.WatchResponse) (store.WatchResponse, bool) {
	out := store.WatchResponse{Revision: resp.Header.Revision}
	if resp.CompactRevision != 0 {
		out.Err = fmt.Errorf("etcdstore: watch: compacted at %d: %w", resp.CompactRevision, store.ErrCompacted)
		return out, true
	}
	if err := resp.Err(); err != nil {
		if ctx.Err() != nil {
			return store.WatchResponse{}, true // closed by us: just end
		}
		out.Err = w.s.mapErr(ctx, "watch", err)
		return out, true
	}
	if resp.Canceled {
		return store.WatchResponse{}, true
	}
	for _, ev := range resp.Events {
		e := store.Event{Type: store.EventPut, KV: w.s.kv(ev.Kv)}
		if ev.Type == mvccpb.DELETE {
			e.Type = store.EventDelete
			e.KV = store.KV{Key: e.KV.Key, ModRevision: ev.Kv.ModRevision}
		}
		out.Events = append(out.Events, e)
		out.Revision = ev.Kv.ModRevision
	}
	return out, false
}
