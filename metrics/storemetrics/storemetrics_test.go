package storemetrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/metrics"
	"github.com/vda-io/vda/metrics/storemetrics"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
	"github.com/vda-io/vda/store/storetest"
)

func newMem(t *testing.T) store.Store {
	t.Helper()
	s, err := memstore.New(memstore.Config{})
	require.NoError(t, err)
	return s
}

// The wrapped store is still a conforming store (Compactor included).
func TestConformance(t *testing.T) {
	m, err := storemetrics.New(metrics.NewRegistry())
	require.NoError(t, err)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := m.Wrap(newMem(t))
		_, ok := s.(store.Compactor)
		require.True(t, ok, "memstore compacts, so does its wrapper")
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestScrape(t *testing.T) {
	ctx := context.Background()
	reg := metrics.NewRegistry()
	m, err := storemetrics.New(reg)
	require.NoError(t, err)
	s := m.Wrap(newMem(t))
	t.Cleanup(func() { _ = s.Close() })

	// One commit, one lost race, one absent get (no error), one bad key.
	res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "/k", Value: []byte("1")}}})
	require.NoError(t, err)
	require.True(t, res.Succeeded)
	res, err = s.Txn(ctx, store.Txn{Conds: []store.Cond{{Key: "/k", ModRevision: 0}}, Ops: []store.Op{{Key: "/k", Value: []byte("2")}}})
	require.NoError(t, err)
	require.False(t, res.Succeeded)
	_, err = s.Get(ctx, "/absent")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "", Value: []byte("x")}}})
	require.ErrorIs(t, err, store.ErrInvalidKey)
	_, err = s.List(ctx, "/", store.ListOptions{})
	require.NoError(t, err)
	_, err = s.Revision(ctx)
	require.NoError(t, err)

	// store.Update over the wrapper: a conflict forced by a concurrent write
	// on the first attempt shows up as one more conflict.
	first := true
	require.NoError(t, store.Update(ctx, s, func(tx *store.Tx) error {
		if _, err := tx.Get("/k"); err != nil {
			return err
		}
		if first {
			first = false
			_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "/k", Value: []byte("3")}}})
			require.NoError(t, err)
		}
		tx.Put("/k", []byte("4"))
		return nil
	}))

	require.Equal(t, 2.0, testutil.ToFloat64(m.Conflicts()))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vda_store_txn_conflicts_total Store transactions whose compare-and-swap conditions failed: another writer changed a key read (the update is retried).
# TYPE vda_store_txn_conflicts_total counter
vda_store_txn_conflicts_total 2
# HELP vda_store_errors_total Store calls that failed, by operation (a get of an absent key is no failure).
# TYPE vda_store_errors_total counter
vda_store_errors_total{op="txn"} 1
`), "vda_store_txn_conflicts_total", "vda_store_errors_total"))
	count := func(name string, labels ...string) uint64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metric:
			for _, mt := range mf.GetMetric() {
				for i, lp := range mt.GetLabel() {
					if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
						continue metric
					}
				}
				return mt.GetHistogram().GetSampleCount()
			}
		}
		return 0
	}
	require.EqualValues(t, 3, count("vda_store_txn_duration_seconds", "result", "committed"), "the first, the racing write and the update")
	require.EqualValues(t, 2, count("vda_store_txn_duration_seconds", "result", "conflict"))
	require.EqualValues(t, 1, count("vda_store_txn_duration_seconds", "result", "error"))
	require.EqualValues(t, 3, count("vda_store_read_duration_seconds", "op", "get"), "the absent key and the update's two reads")
	require.EqualValues(t, 1, count("vda_store_read_duration_seconds", "op", "list"))
	require.EqualValues(t, 1, count("vda_store_read_duration_seconds", "op", "revision"))

	var nilM *storemetrics.Metrics
	raw := newMem(t)
	t.Cleanup(func() { _ = raw.Close() })
	require.Same(t, raw, nilM.Wrap(raw), "nil metrics: the store itself")
}
