package storemetrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vda-io/vda/metrics"
	"github.com/vda-io/vda/store"
)

// Results of a transaction (the result label of vda_store_txn_duration_seconds).
const (
	ResultCommitted = "committed" // its conditions held: applied
	ResultConflict  = "conflict"  // a condition failed: nothing written (store.Update runs again)
	ResultError     = "error"     // the call failed
)

// Metrics is the store's metrics.
type Metrics struct {
	txnDuration  *prometheus.HistogramVec
	conflicts    prometheus.Counter
	readDuration *prometheus.HistogramVec
	errors       *prometheus.CounterVec
}

// New registers the store's metrics on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 14) // 0.5 ms .. 4 s
	m := &Metrics{
		txnDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "store",
			Name: "txn_duration_seconds", Help: "Latency of store transactions by result (committed, conflict, error).",
			Buckets: buckets}, []string{"result"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "store",
			Name: "txn_conflicts_total", Help: "Store transactions whose compare-and-swap conditions failed: another writer changed a key read (the update is retried)."}),
		readDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metrics.Namespace, Subsystem: "store",
			Name: "read_duration_seconds", Help: "Latency of store reads by operation (get, list, revision).",
			Buckets: buckets}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metrics.Namespace, Subsystem: "store",
			Name: "errors_total", Help: "Store calls that failed, by operation (a get of an absent key is no failure)."}, []string{"op"}),
	}
	return m, metrics.Register(reg, m.txnDuration, m.conflicts, m.readDuration, m.errors)
}

// Wrap returns s with every Txn, Get, List and Revision observed by m
// (nil m: s itself). The result implements store.Compactor when s does.
// Closing it closes s.
func (m *Metrics) Wrap(s store.Store) store.Store {
	if m == nil {
		return s
	}
	w := &Store{Store: s, m: m}
	if c, ok := s.(store.Compactor); ok {
		return &compactingStore{Store: w, c: c}
	}
	return w
}

// Store is a store.Store whose calls are observed.
type Store struct {
	store.Store
	m *Metrics
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Compactor = (*compactingStore)(nil)
)

// Txn implements store.Store.
func (s *Store) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	start := time.Now()
	res, err := s.Store.Txn(ctx, t)
	result := ResultCommitted
	switch {
	case err != nil:
		result = ResultError
		s.m.errors.WithLabelValues("txn").Inc()
	case !res.Succeeded:
		result = ResultConflict
		s.m.conflicts.Inc()
	}
	s.m.txnDuration.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return res, err
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	start := time.Now()
	kv, err := s.Store.Get(ctx, key)
	s.read("get", start, err)
	return kv, err
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string, opt store.ListOptions) (store.ListResult, error) {
	start := time.Now()
	res, err := s.Store.List(ctx, prefix, opt)
	s.read("list", start, err)
	return res, err
}

// Revision implements store.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	start := time.Now()
	rev, err := s.Store.Revision(ctx)
	s.read("revision", start, err)
	return rev, err
}

func (s *Store) read(op string, start time.Time, err error) {
	s.m.readDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.m.errors.WithLabelValues(op).Inc()
	}
}

type compactingStore struct {
	*Store
	c store.Compactor
}

// Compact implements store.Compactor.
func (s *compactingStore) Compact(ctx context.Context, rev int64) error { return s.c.Compact(ctx, rev) }

// Conflicts is the vda_store_txn_conflicts_total counter (for tests and
// embedders that act on it).
func (m *Metrics) Conflicts() prometheus.Counter { return m.conflicts }
