package etcdstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/etcdembed"
	"github.com/vda-io/vda/store/memstore"
)

// TestMemstoreMatchesEtcd applies the same random transactions to a fresh
// etcd and a fresh memstore (both start at revision 1) and requires
// identical results, revisions, versions and watch streams: memstore is a
// faithful stand-in for etcd in tests.
func TestMemstoreMatchesEtcd(t *testing.T) {
	ctx := context.Background()
	e, err := etcdembed.Open(ctx, fastConfig(t.TempDir()), "")
	require.NoError(t, err)
	defer e.Close()
	m, err := memstore.New(memstore.Config{})
	require.NoError(t, err)
	defer m.Close()
	stores := []store.Store{e, m}
	var watchers []store.Watcher
	for _, s := range stores {
		w, err := s.Watch(ctx, "", 1)
		require.NoError(t, err)
		defer w.Close()
		watchers = append(watchers, w)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		txn := randomTxn(rng, m)
		var results []store.TxnResult
		for _, s := range stores {
			res, err := s.Txn(ctx, txn)
			require.NoError(t, err)
			results = append(results, res)
		}
		require.Equal(t, results[0], results[1], "txn %d: %+v", i, txn)
	}
	var lists []store.ListResult
	for _, s := range stores {
		l, err := s.List(ctx, "", store.ListOptions{})
		require.NoError(t, err)
		lists = append(lists, l)
	}
	require.Equal(t, normalize(lists[0].KVs), normalize(lists[1].KVs))
	require.Equal(t, lists[0].Revision, lists[1].Revision)

	var streams [2][]store.Event
	for i, w := range watchers {
		for len(streams[i]) == 0 || streams[i][len(streams[i])-1].KV.ModRevision < lists[0].Revision {
			select {
			case resp := <-w.Events():
				require.NoError(t, resp.Err)
				streams[i] = append(streams[i], resp.Events...)
			case <-time.After(10 * time.Second):
				t.Fatalf("watch %d stalled", i)
			}
		}
		for j := range streams[i] {
			streams[i][j].KV.Value = nonNil(streams[i][j].KV.Value)
		}
	}
	require.Equal(t, streams[0], streams[1])
	t.Logf("%d events, final revision %d", len(streams[0]), lists[0].Revision)
}

// randomTxn builds a txn over 8 keys whose conds are usually current (read
// from ref) and sometimes stale.
func randomTxn(rng *rand.Rand, ref store.Store) store.Txn {
	var t store.Txn
	keys := rng.Perm(8)
	for _, k := range keys[:rng.IntN(3)] {
		key := fmt.Sprintf("k%d", k)
		var rev int64
		if kv, err := ref.Get(context.Background(), key); err == nil {
			rev = kv.ModRevision
		}
		if rng.IntN(5) == 0 {
			rev = rng.Int64N(rev + 3)
		}
		t.Conds = append(t.Conds, store.Cond{Key: key, ModRevision: rev})
	}
	for _, k := range keys[:rng.IntN(4)] {
		op := store.Op{Key: fmt.Sprintf("k%d", k)}
		if rng.IntN(3) == 0 {
			op.Delete = true
		} else {
			op.Value = fmt.Appendf(nil, "v%d", rng.IntN(100))
		}
		t.Ops = append(t.Ops, op)
	}
	return t
}

func normalize(kvs []store.KV) []store.KV {
	for i := range kvs {
		kvs[i].Value = nonNil(kvs[i].Value)
	}
	return kvs
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
