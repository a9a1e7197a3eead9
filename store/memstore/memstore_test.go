package memstore_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
	"github.com/vda-io/vda/store/storetest"
)

func newStore(t *testing.T, cfg memstore.Config) *memstore.Store {
	t.Helper()
	s, err := memstore.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return newStore(t, memstore.DefaultConfig())
	})
}

func TestOpen(t *testing.T) {
	s, err := store.Open(context.Background(), "memory://")
	require.NoError(t, err)
	defer s.Close()
	_, ok := s.(*memstore.Store)
	assert.True(t, ok)
	assert.Contains(t, store.Schemes(), "memory")
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := memstore.New(memstore.Config{HistoryRevisions: -1})
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	_, err = memstore.New(memstore.Config{ExpiryInterval: -time.Second})
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLeaseExpiryFollowsClock(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	// A long background interval: expiry here comes from the calls' own check.
	s := newStore(t, memstore.Config{Clock: clock, ExpiryInterval: time.Hour})
	ctx := context.Background()
	id, err := s.Grant(ctx, 10*time.Second)
	require.NoError(t, err)
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v"), Lease: id}}})
	require.NoError(t, err)

	clock.Advance(9 * time.Second)
	require.NoError(t, s.KeepAlive(ctx, id)) // now expires at 19 s from the start
	clock.Advance(9 * time.Second)
	_, err = s.Get(ctx, "k")
	require.NoError(t, err, "refreshed lease still alive")

	clock.Advance(time.Second)
	_, err = s.Get(ctx, "k")
	require.ErrorIs(t, err, store.ErrNotFound, "expired at exactly its TTL after the last refresh")
	assert.ErrorIs(t, s.KeepAlive(ctx, id), store.ErrLeaseNotFound)
}

func TestBackgroundExpiryNotifiesWatchers(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	s := newStore(t, memstore.Config{Clock: clock, ExpiryInterval: time.Millisecond})
	ctx := context.Background()
	id, err := s.Grant(ctx, time.Second)
	require.NoError(t, err)
	res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v"), Lease: id}}})
	require.NoError(t, err)
	w, err := s.Watch(ctx, "", 0)
	require.NoError(t, err)
	defer w.Close()
	clock.Advance(time.Second)
	// No call on the store: only the expiry loop can produce this event.
	select {
	case resp := <-w.Events():
		require.Len(t, resp.Events, 1)
		assert.Equal(t, store.EventDelete, resp.Events[0].Type)
		assert.Equal(t, res.Revision+1, resp.Events[0].KV.ModRevision)
	case <-time.After(10 * time.Second):
		t.Fatal("expiry loop did not delete the key")
	}
}

func TestHistoryLimitCompactsSlowWatchers(t *testing.T) {
	s := newStore(t, memstore.Config{HistoryRevisions: 5})
	ctx := context.Background()
	var revs []int64
	for range 10 {
		res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v")}}})
		require.NoError(t, err)
		revs = append(revs, res.Revision)
	}
	_, err := s.Watch(ctx, "", revs[4])
	require.ErrorIs(t, err, store.ErrCompacted, "only the last 5 revisions are kept")
	w, err := s.Watch(ctx, "", revs[5])
	require.NoError(t, err)
	defer w.Close()
	resp := <-w.Events()
	require.NoError(t, resp.Err)
	assert.Len(t, resp.Events, 5)

}

func TestSlowWatcherGetsErrCompacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := memstore.New(memstore.Config{HistoryRevisions: 5})
		require.NoError(t, err)
		defer s.Close()
		ctx := context.Background()
		write := func() {
			_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v")}}})
			require.NoError(t, err)
		}
		slow, err := s.Watch(ctx, "", 0)
		require.NoError(t, err)
		defer slow.Close()
		write()
		synctest.Wait() // the watcher now holds that one event, blocked on send
		// It stops reading while 10 more writes happen: they fall out of the
		// kept history, and it is told so instead of silently missing them.
		for range 10 {
			write()
		}
		resp := <-slow.Events()
		require.NoError(t, resp.Err)
		assert.Len(t, resp.Events, 1)
		resp, ok := <-slow.Events()
		require.True(t, ok)
		assert.ErrorIs(t, resp.Err, store.ErrCompacted)
		_, ok = <-slow.Events()
		assert.False(t, ok, "the error ends the stream")
	})
}

func TestWritersDoNotWaitForWatchers(t *testing.T) {
	s := newStore(t, memstore.Config{})
	ctx := context.Background()
	w, err := s.Watch(ctx, "", 0)
	require.NoError(t, err)
	defer w.Close()
	// Nobody reads w; writes must still complete.
	for range 100 {
		_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v")}}})
		require.NoError(t, err)
	}
	n := 0
	for n < 100 {
		resp := <-w.Events()
		require.NoError(t, resp.Err)
		n += len(resp.Events)
	}
	assert.Equal(t, 100, n)
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := memstore.New(memstore.DefaultConfig())
		require.NoError(b, err)
		b.Cleanup(func() { _ = s.Close() })
		return s
	})
}
