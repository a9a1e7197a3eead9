package memstore

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/store"
)

func init() {
	store.Register("memory", func(_ context.Context, _ *url.URL, o store.OpenOptions) (store.Store, error) {
		return New(Config{Logger: o.Logger})
	})
}

// Clock tells the time leases expire by. Tests inject a fake one.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config configures a Store. The zero value is usable.
type Config struct {
	// Clock drives lease expiry; nil means the real clock.
	Clock Clock
	// Logger receives debug logs; nil means silent.
	Logger hclog.Logger
	// HistoryRevisions is how many recent revisions (at least) are kept
	// for Watch to replay; older ones are compacted automatically, in
	// batches of HistoryRevisions/8. 0 keeps everything (until Compact).
	HistoryRevisions int64
	// ExpiryInterval is how often expired leases are looked for in the
	// background (every call also checks first). 0 means 100ms.
	ExpiryInterval time.Duration
}

// DefaultConfig returns the configuration used by store.Open("memory://").
func DefaultConfig() Config {
	return Config{HistoryRevisions: 100000, ExpiryInterval: 100 * time.Millisecond}
}

// Store is an in-memory store.Store. All state is guarded by one mutex; it
// is never held while sending to a watcher.
type Store struct {
	cfg Config
	log hclog.Logger

	mu        sync.Mutex
	closed    bool
	rev       int64
	compacted int64 // watches from below it get ErrCompacted
	kvs       map[string]store.KV
	keys      keySet // of kvs, in order
	leases    map[store.LeaseID]*lease
	lastLease store.LeaseID
	// nextExpiry is no later than the earliest lease expiry (KeepAlive
	// only moves expiries later, so it stays a lower bound).
	nextExpiry time.Time
	history    []revision    // ascending by rev, rev >= compacted
	notify     chan struct{} // closed (and replaced) on every new revision

	done chan struct{}
	wg   sync.WaitGroup
}

type lease struct {
	ttl    time.Duration
	expiry time.Time
	keys   map[string]struct{}
}

type revision struct {
	rev    int64
	events []store.Event
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Compactor = (*Store)(nil)
)

// New returns an empty Store at revision 1 and starts its lease expiry loop
// (stopped by Close).
func New(cfg Config) (*Store, error) {
	if cfg.HistoryRevisions < 0 {
		return nil, fmt.Errorf("%w: memstore: negative HistoryRevisions", store.ErrInvalidArgument)
	}
	if cfg.ExpiryInterval < 0 {
		return nil, fmt.Errorf("%w: memstore: negative ExpiryInterval", store.ErrInvalidArgument)
	}
	if cfg.ExpiryInterval == 0 {
		cfg.ExpiryInterval = 100 * time.Millisecond
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	s := &Store{
		cfg:    cfg,
		log:    cfg.Logger.Named("memstore"),
		rev:    1,
		kvs:    map[string]store.KV{},
		leases: map[store.LeaseID]*lease{},
		notify: make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.wg.Add(1)
	go s.expiryLoop()
	return s, nil
}

func (s *Store) expiryLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.mu.Lock()
			if !s.closed {
				s.expireLocked()
			}
			s.mu.Unlock()
		}
	}
}

// begin checks ctx, locks, refuses a closed store and expires due leases.
// On success the caller holds s.mu.
func (s *Store) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memstore: %s: %w", op, store.ErrClosed)
	}
	s.expireLocked()
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := store.ValidateKey(key); err != nil {
		return store.KV{}, err
	}
	if err := s.begin(ctx, "get"); err != nil {
		return store.KV{}, err
	}
	defer s.mu.Unlock()
	kv, ok := s.kvs[key]
	if !ok {
		return store.KV{}, fmt.Errorf("%w: %s", store.ErrNotFound, key)
	}
	return cloneKV(kv), nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string, opt store.ListOptions) (store.ListResult, error) {
	if err := store.ValidateListOptions(prefix, opt); err != nil {
		return store.ListResult{}, err
	}
	if err := s.begin(ctx, "list"); err != nil {
		return store.ListResult{}, err
	}
	defer s.mu.Unlock()
	start := prefix
	if opt.StartAfter >= start {
		start = opt.StartAfter + "\x00"
	}
	res := store.ListResult{Revision: s.rev}
	s.keys.ascend(start, func(k string) bool {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		if opt.Limit > 0 && len(res.KVs) == opt.Limit {
			res.More = true
			return false
		}
		res.KVs = append(res.KVs, cloneKV(s.kvs[k]))
		return true
	})
	return res, nil
}

// Revision implements store.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.begin(ctx, "revision"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.rev, nil
}

// Close implements store.Store: it ends every watch and the expiry loop.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		close(s.notify)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Compact implements store.Compactor: history below rev is dropped, and
// watches from below rev get store.ErrCompacted. Like etcd, compacting at or
// below an earlier compaction is refused with ErrCompacted, and compacting
// a future revision with ErrInvalidArgument.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if err := s.begin(ctx, "compact"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if rev <= s.compacted {
		return fmt.Errorf("memstore: compact %d (compacted at %d): %w", rev, s.compacted, store.ErrCompacted)
	}
	if rev > s.rev {
		return fmt.Errorf("%w: compact at future revision %d (current %d)", store.ErrInvalidArgument, rev, s.rev)
	}
	s.compactLocked(rev)
	return nil
}

func (s *Store) compactLocked(rev int64) {
	s.compacted = rev
	i, _ := slices.BinarySearchFunc(s.history, rev, func(r revision, rev int64) int {
		return compareInt(r.rev, rev)
	})
	s.history = slices.Delete(s.history, 0, i)
	s.log.Debug("compacted", "revision", rev)
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cloneKV(kv store.KV) store.KV {
	kv.Value = slices.Clone(kv.Value)
	return kv
}
