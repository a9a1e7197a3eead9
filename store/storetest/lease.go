package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
)

// shortTTL is the shortest lease the suite asks for.
const shortTTL = time.Second

func putLease(t *testing.T, s store.Store, key, value string, id store.LeaseID) int64 {
	t.Helper()
	res, err := s.Txn(ctxT(t), store.Txn{Ops: []store.Op{{Key: key, Value: []byte(value), Lease: id}}})
	require.NoError(t, err)
	require.True(t, res.Succeeded)
	return res.Revision
}

func testLeaseRevoke(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	id, err := s.Grant(ctx, time.Minute)
	require.NoError(t, err)
	require.NotEqual(t, store.NoLease, id)
	putLease(t, s, "l/1", "1", id)
	putLease(t, s, "l/2", "2", id)
	put(t, s, "l/3", "no lease")
	kv, err := s.Get(ctx, "l/1")
	require.NoError(t, err)
	assert.Equal(t, id, kv.Lease)
	require.NoError(t, s.KeepAlive(ctx, id))

	w, err := s.Watch(ctx, "l/", 0)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, s.Revoke(ctx, id))
	requireAbsent(t, s, "l/1")
	requireAbsent(t, s, "l/2")
	_, err = s.Get(ctx, "l/3")
	require.NoError(t, err, "keys without the lease stay")

	_, events := collect(t, w, 2)
	assert.Equal(t, store.EventDelete, events[0].Type)
	assert.Equal(t, store.EventDelete, events[1].Type)
	assert.ElementsMatch(t, []string{"l/1", "l/2"}, []string{events[0].KV.Key, events[1].KV.Key})
	assert.Equal(t, events[0].KV.ModRevision, events[1].KV.ModRevision, "a revoke deletes at one revision")

	assert.ErrorIs(t, s.KeepAlive(ctx, id), store.ErrLeaseNotFound)
	assert.ErrorIs(t, s.Revoke(ctx, id), store.ErrLeaseNotFound)
	_, err = s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "l/4", Value: []byte("x"), Lease: id}}})
	assert.ErrorIs(t, err, store.ErrLeaseNotFound)
	requireAbsent(t, s, "l/4")
}

func testLeaseExpiry(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	id, err := s.Grant(ctx, shortTTL)
	require.NoError(t, err)
	putLease(t, s, "e/1", "1", id)
	putLease(t, s, "e/2", "2", id)
	put(t, s, "e/2", "rebound without a lease") // no longer the lease's
	w, err := s.Watch(ctx, "e/", 0)
	require.NoError(t, err)
	defer w.Close()

	require.Eventually(t, func() bool {
		_, err := s.Get(ctx, "e/1")
		return isNotFound(err)
	}, timeout, 20*time.Millisecond, "a key bound to an expired lease must vanish")
	_, events := collect(t, w, 1)
	assert.Equal(t, store.EventDelete, events[0].Type)
	assert.Equal(t, "e/1", events[0].KV.Key)
	kv, err := s.Get(ctx, "e/2")
	require.NoError(t, err)
	assert.Equal(t, store.NoLease, kv.Lease)
	assert.ErrorIs(t, s.KeepAlive(ctx, id), store.ErrLeaseNotFound)
}

func testLeaseKeepAlive(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	// A longer TTL than the other lease tests: refreshes must survive the
	// scheduling stalls of a loaded 2-core CI machine running every package's
	// tests at once (a 1 s TTL refreshed every 200 ms expired there once).
	const ttl = 3 * shortTTL
	id, err := s.Grant(ctx, ttl)
	require.NoError(t, err)
	putLease(t, s, "k/1", "1", id)

	// Refreshing well within the TTL keeps the key past several TTLs.
	tick := time.NewTicker(shortTTL / 5)
	defer tick.Stop()
	until := time.Now().Add(2 * ttl)
	for time.Now().Before(until) {
		<-tick.C
		require.NoError(t, s.KeepAlive(ctx, id))
	}
	_, err = s.Get(ctx, "k/1")
	require.NoError(t, err, "a refreshed lease keeps its keys")

	require.Eventually(t, func() bool {
		_, err := s.Get(ctx, "k/1")
		return isNotFound(err)
	}, timeout, 20*time.Millisecond, "without refreshes the lease expires")
}

func testLeaseUnknown(t *testing.T, s store.Store) {
	ctx := ctxT(t)
	const bogus = store.LeaseID(0x5eed5eed)
	assert.ErrorIs(t, s.KeepAlive(ctx, bogus), store.ErrLeaseNotFound)
	assert.ErrorIs(t, s.Revoke(ctx, bogus), store.ErrLeaseNotFound)
	_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{
		{Key: "u/1", Value: []byte("x")},
		{Key: "u/2", Value: []byte("x"), Lease: bogus},
	}})
	assert.ErrorIs(t, err, store.ErrLeaseNotFound)
	requireAbsent(t, s, "u/1")
}
