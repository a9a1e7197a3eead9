package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vda-io/vda/store"
)

// hub tracks the newest revision this store knows to be committed and wakes
// the watchers when it grows. Every revision up to it is committed, because
// writers commit in revision order.
type hub struct {
	mu       sync.Mutex
	rev      int64
	wake     chan struct{} // closed and replaced when rev grows
	watchers int
}

func newHub() *hub { return &hub{wake: make(chan struct{})} }

func (h *hub) advance(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev > h.rev {
		h.rev = rev
		close(h.wake)
		h.wake = make(chan struct{})
	}
}

func (h *hub) current() (int64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev, h.wake
}

func (h *hub) add(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers += n
}

func (h *hub) active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.watchers > 0
}

// poll reads the revision every PollInterval while watchers are active, to
// learn of writes by other clients.
func (s *Store) poll() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if !s.hub.active() {
			continue
		}
		if err := s.refresh(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Debug("poll revision failed", "error", err)
		}
	}
}

func (s *Store) refresh(ctx context.Context) error {
	var rev int64
	if err := s.db.QueryRowContext(ctx, `SELECT revision FROM vda_state WHERE id = 1`).Scan(&rev); err != nil {
		return err
	}
	s.hub.advance(rev)
	return nil
}

// listen keeps a PostgreSQL LISTEN connection open for the store's lifetime,
// reconnecting with backoff, and feeds the notified revisions to the hub.
func (s *Store) listen() {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil {
		start := time.Now()
		err := s.drv.Listen(s.ctx, s.u, pgChannel, func() {
			// Writes made while not listening are found by reading the revision.
			if err := s.refresh(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Debug("read revision after listen failed", "error", err)
			}
		}, s.notified)
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("listen connection lost; watchers fall back to polling until it is back", "error", err)
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (s *Store) notified(payload string) {
	schema, revText, ok := strings.Cut(payload, ":")
	if !ok || schema != s.schema {
		return
	}
	if rev, err := strconv.ParseInt(revText, 10, 64); err == nil {
		s.hub.advance(rev)
	}
}

// Watch streams the changes under prefix from fromRevision on (0: from the
// next revision). See store.Store.
func (s *Store) Watch(ctx context.Context, prefix string, fromRevision int64) (store.Watcher, error) {
	if err := s.checkOpen("watch"); err != nil {
		return nil, err
	}
	if err := store.ValidateWatch(prefix, fromRevision); err != nil {
		return nil, err
	}
	var rev, compacted int64
	if err := s.db.QueryRowContext(ctx, `SELECT revision, compacted FROM vda_state WHERE id = 1`).
		Scan(&rev, &compacted); err != nil {
		return nil, s.fail(ctx, "watch", err)
	}
	s.hub.advance(rev)
	if fromRevision == 0 {
		fromRevision = rev + 1
	}
	if fromRevision < compacted {
		return nil, fmt.Errorf("sqlstore: watch from %d: %w (oldest kept: %d)", fromRevision, store.ErrCompacted, compacted)
	}
	if s.d.notify && s.drv.Listen != nil {
		s.listenOnce.Do(func() {
			if s.goroutine() {
				go s.listen()
			}
		})
	}
	if !s.goroutine() {
		return nil, fmt.Errorf("sqlstore: watch: %w", store.ErrClosed)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{
		s: s, prefix: prefix, next: fromRevision,
		ch: make(chan store.WatchResponse), cancel: cancel, done: make(chan struct{}),
	}
	stop := context.AfterFunc(s.ctx, cancel)
	s.hub.add(1)
	go func() {
		defer s.wg.Done()
		defer stop()
		defer s.hub.add(-1)
		w.run(wctx)
	}()
	return w, nil
}

// watcher reads the change log from next on and delivers it.
type watcher struct {
	s      *Store
	prefix string
	next   int64 // first revision not yet delivered
	ch     chan store.WatchResponse
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *watcher) Events() <-chan store.WatchResponse { return w.ch }

// Close stops the watch and waits until its channel is closed.
func (w *watcher) Close() error {
	w.cancel()
	<-w.done
	return nil
}

// watchBatch bounds the log rows one read returns.
const watchBatch = 1000

func (w *watcher) run(ctx context.Context) {
	defer close(w.done)
	defer close(w.ch)
	for {
		hi, wake := w.s.hub.current()
		for w.next <= hi {
			resp, err := w.read(ctx, hi)
			if errors.Is(err, store.ErrCompacted) {
				w.send(ctx, store.WatchResponse{Revision: w.next - 1, Err: err})
				return
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				w.s.log.Warn("watch read failed; retrying", "prefix", w.prefix, "error", err)
				if !sleep(ctx, w.s.cfg.PollInterval) {
					return
				}
				continue
			}
			if len(resp.Events) > 0 && !w.send(ctx, resp) {
				return
			}
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

func (w *watcher) send(ctx context.Context, resp store.WatchResponse) bool {
	select {
	case w.ch <- resp:
		return true
	case <-ctx.Done():
		return false
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// read returns the events of whole revisions from w.next to at most hi and
// advances w.next past them.
func (w *watcher) read(ctx context.Context, hi int64) (store.WatchResponse, error) {
	s := w.s
	q, args := rangeWhere(`SELECT revision, kind, k, v, create_rev, version, lease FROM vda_log
		WHERE revision >= ? AND revision <= ?`, "k", w.prefix, "")
	args = append([]any{w.next, hi}, args...)
	events, revs, err := w.query(ctx, q+fmt.Sprintf(" ORDER BY revision, seq LIMIT %d", watchBatch), args...)
	if err != nil {
		return store.WatchResponse{}, err
	}
	next := hi + 1
	if len(events) == watchBatch {
		last := revs[len(revs)-1]
		if revs[0] == last {
			// One revision (a lease's many keys) fills the batch: read it whole.
			args[0], args[1] = last, last
			if events, revs, err = w.query(ctx, q+" ORDER BY revision, seq", args...); err != nil {
				return store.WatchResponse{}, err
			}
			next = last + 1
		} else {
			cut := len(revs)
			for revs[cut-1] == last {
				cut--
			}
			events, revs, next = events[:cut], revs[:cut], last
		}
	}
	// Compaction deletes the log below its revision before it records it,
	// so reading it afterwards tells whether the rows read were complete.
	var compacted int64
	if err := s.db.QueryRowContext(ctx, `SELECT compacted FROM vda_state WHERE id = 1`).Scan(&compacted); err != nil {
		return store.WatchResponse{}, err
	}
	if w.next < compacted {
		return store.WatchResponse{}, fmt.Errorf("sqlstore: watch at %d: %w (oldest kept: %d)",
			w.next, store.ErrCompacted, compacted)
	}
	w.next = next
	resp := store.WatchResponse{Events: events, Revision: next - 1}
	if len(revs) > 0 {
		resp.Revision = revs[len(revs)-1]
	}
	return resp, nil
}

func (w *watcher) query(ctx context.Context, q string, args ...any) ([]store.Event, []int64, error) {
	rows, err := w.s.db.QueryContext(ctx, w.s.d.rebind(q), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var events []store.Event
	var revs []int64
	for rows.Next() {
		var rev, createRev, version, lease int64
		var kind int
		var k, v []byte
		if err := rows.Scan(&rev, &kind, &k, &v, &createRev, &version, &lease); err != nil {
			return nil, nil, err
		}
		ev := store.Event{Type: store.EventPut, KV: store.KV{Key: string(k), ModRevision: rev}}
		if kind == kindDelete {
			ev.Type = store.EventDelete
		} else {
			ev.KV.Value, ev.KV.CreateRevision, ev.KV.Version, ev.KV.Lease = v, createRev, version, store.LeaseID(lease)
		}
		events = append(events, ev)
		revs = append(revs, rev)
	}
	return events, revs, rows.Err()
}
