package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
)

// Factory returns a fresh, empty store for one subtest.
type Factory func(t *testing.T) store.Store

// timeout bounds every single wait of the suite.
const timeout = 15 * time.Second

// Run runs the conformance suite against the stores newStore returns.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name   string
		fn     func(t *testing.T, s store.Store)
		serial bool // runs before the parallel tests resume
	}{
		{name: "GetPutDelete", fn: testGetPutDelete},
		{name: "CompareAndSwap", fn: testCompareAndSwap},
		{name: "TxnAtomic", fn: testTxnAtomic},
		{name: "EmptyTxn", fn: testEmptyTxn},
		{name: "ListPaging", fn: testListPaging},
		{name: "ListPrefixIsolation", fn: testListPrefixIsolation},
		{name: "BadInput", fn: testBadInput},
		{name: "LargeValues", fn: testLargeValues},
		{name: "ConcurrentTxnCounter", fn: testConcurrentTxnCounter},
		{name: "UpdateCounter", fn: testUpdateCounter},
		{name: "UpdateRetriesOnConflict", fn: testUpdateRetriesOnConflict},
		{name: "UpdateReadYourWrites", fn: testUpdateReadYourWrites},
		{name: "UpdateError", fn: testUpdateError},
		{name: "UpdateAssumed", fn: testUpdateAssumed},
		{name: "WatchOrder", fn: testWatchOrder},
		{name: "WatchResume", fn: testWatchResume},
		{name: "WatchClose", fn: testWatchClose},
		{name: "WatchConcurrentWriters", fn: testWatchConcurrentWriters},
		{name: "WatchThenRead", fn: testWatchThenRead},
		{name: "Compaction", fn: testCompaction, serial: true}, // compaction is store-wide
		{name: "LeaseRevoke", fn: testLeaseRevoke},
		{name: "LeaseExpiry", fn: testLeaseExpiry},
		{name: "LeaseKeepAlive", fn: testLeaseKeepAlive},
		{name: "LeaseUnknown", fn: testLeaseUnknown},
		{name: "ContextCanceled", fn: testContextCanceled},
		{name: "Closed", fn: testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.serial {
				t.Parallel()
			}
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// put writes key unconditionally and returns the revision of the write.
func put(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	res, err := s.Txn(ctxT(t), store.Txn{Ops: []store.Op{{Key: key, Value: []byte(value)}}})
	require.NoError(t, err)
	require.True(t, res.Succeeded)
	return res.Revision
}

func del(t *testing.T, s store.Store, key string) int64 {
	t.Helper()
	res, err := s.Txn(ctxT(t), store.Txn{Ops: []store.Op{{Key: key, Delete: true}}})
	require.NoError(t, err)
	require.True(t, res.Succeeded)
	return res.Revision
}

func requireAbsent(t *testing.T, s store.Store, key string) {
	t.Helper()
	_, err := s.Get(ctxT(t), key)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testGetPutDelete(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	requireAbsent(t, s, "a")
	start, err := s.Revision(ctx)
	require.NoError(t, err)

	r1 := put(t, s, "a", "one")
	require.Greater(t, r1, start)
	kv, err := s.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, store.KV{Key: "a", Value: []byte("one"), CreateRevision: r1, ModRevision: r1, Version: 1}, kv)

	r2 := put(t, s, "a", "two")
	require.Greater(t, r2, r1)
	kv, err = s.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, store.KV{Key: "a", Value: []byte("two"), CreateRevision: r1, ModRevision: r2, Version: 2}, kv)
	cur, err := s.Revision(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cur, r2)

	kv.Value[0] = 'X' // callers own what they get
	kv, err = s.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "two", string(kv.Value))

	r3 := del(t, s, "a")
	require.Greater(t, r3, r2)
	requireAbsent(t, s, "a")

	// Re-creation starts a new life: new CreateRevision, Version 1.
	r4 := put(t, s, "a", "")
	kv, err = s.Get(ctx, "a")
	require.NoError(t, err)
	assert.Empty(t, kv.Value)
	assert.Equal(t, r4, kv.CreateRevision)
	assert.Equal(t, int64(1), kv.Version)
}

func testCompareAndSwap(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	create := store.Txn{
		Conds: []store.Cond{{Key: "k", ModRevision: 0}},
		Ops:   []store.Op{{Key: "k", Value: []byte("v1")}},
	}
	res, err := s.Txn(ctx, create)
	require.NoError(t, err)
	require.True(t, res.Succeeded, "create-if-absent on an absent key")
	r1 := res.Revision

	res, err = s.Txn(ctx, create)
	require.NoError(t, err)
	assert.False(t, res.Succeeded, "create-if-absent on an existing key must fail")
	kv, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v1", string(kv.Value))
	assert.Equal(t, r1, kv.ModRevision)

	swap := func(rev int64, v string) bool {
		res, err := s.Txn(ctx, store.Txn{
			Conds: []store.Cond{{Key: "k", ModRevision: rev}},
			Ops:   []store.Op{{Key: "k", Value: []byte(v)}},
		})
		require.NoError(t, err)
		return res.Succeeded
	}
	require.True(t, swap(r1, "v2"))
	assert.False(t, swap(r1, "stale"), "swap on a stale revision must fail")
	kv, err = s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v2", string(kv.Value))
	assert.True(t, swap(kv.ModRevision, "v3"))

	// A guard on another key.
	res, err = s.Txn(ctx, store.Txn{
		Conds: []store.Cond{{Key: "other", ModRevision: 5}},
		Ops:   []store.Op{{Key: "k", Value: []byte("nope")}},
	})
	require.NoError(t, err)
	assert.False(t, res.Succeeded, "cond on an absent key with a non-zero revision must fail")
	kv, err = s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v3", string(kv.Value))
}

func testTxnAtomic(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	rx := put(t, s, "x", "0")
	put(t, s, "gone", "0")
	res, err := s.Txn(ctx, store.Txn{
		Conds: []store.Cond{{Key: "x", ModRevision: rx}, {Key: "y", ModRevision: 0}},
		Ops: []store.Op{
			{Key: "x", Value: []byte("1")},
			{Key: "y", Value: []byte("1")},
			{Key: "gone", Delete: true},
			{Key: "never", Delete: true},
		},
	})
	require.NoError(t, err)
	require.True(t, res.Succeeded)
	for _, k := range []string{"x", "y"} {
		kv, err := s.Get(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, res.Revision, kv.ModRevision, "every op of a txn shares its revision")
	}
	requireAbsent(t, s, "gone")

	// One failing cond: none of the ops may land.
	before, err := s.List(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	res, err = s.Txn(ctx, store.Txn{
		Conds: []store.Cond{{Key: "x", ModRevision: res.Revision}, {Key: "y", ModRevision: rx}},
		Ops:   []store.Op{{Key: "x", Value: []byte("2")}, {Key: "z", Value: []byte("2")}, {Key: "y", Delete: true}},
	})
	require.NoError(t, err)
	require.False(t, res.Succeeded)
	after, err := s.List(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.KVs, after.KVs, "a failed txn must write nothing")
}

func testEmptyTxn(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	r := put(t, s, "k", "v")
	res, err := s.Txn(ctx, store.Txn{Conds: []store.Cond{{Key: "k", ModRevision: r}}})
	require.NoError(t, err)
	assert.True(t, res.Succeeded)
	res, err = s.Txn(ctx, store.Txn{})
	require.NoError(t, err)
	assert.True(t, res.Succeeded)
	kv, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, r, kv.ModRevision, "a txn without ops changes nothing")
}

func testListPaging(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	const n = 250
	var want []string
	for i := 0; i < n; i += 50 {
		var ops []store.Op
		for j := i; j < i+50; j++ {
			k := fmt.Sprintf("p/%04d", j)
			want = append(want, k)
			ops = append(ops, store.Op{Key: k, Value: []byte(k)})
		}
		res, err := s.Txn(ctx, store.Txn{Ops: ops})
		require.NoError(t, err)
		require.True(t, res.Succeeded)
	}
	put(t, s, "o", "outside")
	put(t, s, "q/0", "outside")

	all, err := s.List(ctx, "p/", store.ListOptions{})
	require.NoError(t, err)
	assert.False(t, all.More)
	assert.Equal(t, want, keys(all.KVs))

	var got []string
	opt := store.ListOptions{Limit: 100}
	pages := 0
	for {
		page, err := s.List(ctx, "p/", opt)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.KVs), 100)
		assert.GreaterOrEqual(t, page.Revision, all.Revision)
		pages++
		for _, kv := range page.KVs {
			assert.Equal(t, kv.Key, string(kv.Value))
			got = append(got, kv.Key)
		}
		if !page.More {
			break
		}
		require.NotEmpty(t, page.KVs)
		opt.StartAfter = page.KVs[len(page.KVs)-1].Key
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 3, pages)

	page, err := s.List(ctx, "p/", store.ListOptions{Limit: 50, StartAfter: "p/0199"})
	require.NoError(t, err)
	assert.Equal(t, want[200:], keys(page.KVs))
	assert.False(t, page.More, "exactly the last 50 keys remain")

	page, err = s.List(ctx, "p/", store.ListOptions{StartAfter: "p/0099x"})
	require.NoError(t, err)
	assert.Equal(t, want[100:], keys(page.KVs), "StartAfter need not be an existing key")

	page, err = s.List(ctx, "p/", store.ListOptions{StartAfter: "a"})
	require.NoError(t, err)
	assert.Equal(t, want, keys(page.KVs), "StartAfter before the prefix")

	page, err = s.List(ctx, "", store.ListOptions{Limit: 1, StartAfter: "p/0249"})
	require.NoError(t, err)
	assert.Equal(t, []string{"q/0"}, keys(page.KVs))
	assert.False(t, page.More)
}

func testListPrefixIsolation(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	for _, k := range []string{"a", "a/", "a/b", "a/b/c", "ab", "b", "é/1", "\u00ff"} {
		put(t, s, k, k)
	}
	cases := map[string][]string{
		"a/":  {"a/", "a/b", "a/b/c"},
		"a":   {"a", "a/", "a/b", "a/b/c", "ab"},
		"a/b": {"a/b", "a/b/c"},
		"é":   {"é/1"},
		"zz":  nil,
		"":    {"a", "a/", "a/b", "a/b/c", "ab", "b", "é/1", "\u00ff"}, // byte order
	}
	for prefix, want := range cases {
		res, err := s.List(ctx, prefix, store.ListOptions{})
		require.NoError(t, err)
		assert.Equal(t, want, keys(res.KVs), "prefix %q", prefix)
	}
}

func keys(kvs []store.KV) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key)
	}
	return out
}

func testContextCanceled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Get(ctx, "k")
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v")}}})
	assert.ErrorIs(t, err, context.Canceled)
	_, err = s.List(ctx, "", store.ListOptions{})
	assert.ErrorIs(t, err, context.Canceled)
	requireAbsent(t, s, "k")
}

func testClosed(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	put(t, s, "k", "v")
	// Only Close can end this watch.
	w, err := s.Watch(context.Background(), "", 0)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	drain(t, w)
	_, err = s.Get(ctx, "k")
	assert.ErrorIs(t, err, store.ErrClosed)
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v")}}})
	assert.ErrorIs(t, err, store.ErrClosed)
	_, err = s.Watch(ctx, "", 0)
	assert.ErrorIs(t, err, store.ErrClosed)
	_, err = s.Grant(ctx, time.Second)
	assert.ErrorIs(t, err, store.ErrClosed)
}

// drain reads w until its channel closes; any response must be an error.
func drain(t *testing.T, w store.Watcher) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed")
		}
	}
}

var errTest = errors.New("test error")

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
