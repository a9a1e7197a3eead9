package sqlstore_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
)

// randomTxn builds a transaction over a small key space, with conditions
// that hold or fail, puts, deletes (also of absent keys) and empty txns.
func randomTxn(r *rand.Rand, seen []int64) store.Txn {
	key := func() string { return fmt.Sprintf("m/%d", r.IntN(6)) }
	var t store.Txn
	for range r.IntN(3) {
		c := store.Cond{Key: key()}
		if r.IntN(3) > 0 && len(seen) > 0 {
			c.ModRevision = seen[r.IntN(len(seen))]
		}
		t.Conds = append(t.Conds, c)
	}
	used := map[string]bool{}
	for range r.IntN(4) {
		k := key()
		if used[k] {
			continue
		}
		used[k] = true
		op := store.Op{Key: k}
		if r.IntN(4) == 0 {
			op.Delete = true
		} else {
			op.Value = []byte(fmt.Sprintf("v%d", r.IntN(1000)))
		}
		t.Ops = append(t.Ops, op)
	}
	return t
}

// Every SQL backend behaves exactly like memstore on the same random
// sequence of transactions: same results, same revisions, same state and
// the same watch history.
func TestMatchesMemstore(t *testing.T) {
	const steps = 300
	for _, b := range sqltest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			sqlS := newStore(t, b)
			model, err := memstore.New(memstore.DefaultConfig())
			require.NoError(t, err)
			defer model.Close()
			ctx := ctxT(t)
			r := rand.New(rand.NewPCG(7, 11))
			seen := []int64{1}
			for i := range steps {
				txn := randomTxn(r, seen)
				want, err := model.Txn(ctx, txn)
				require.NoError(t, err)
				got, err := sqlS.Txn(ctx, txn)
				require.NoError(t, err)
				require.Equal(t, want, got, "step %d: %+v", i, txn)
				seen = append(seen, got.Revision)
				if i%25 == 0 || i == steps-1 {
					wantList, err := model.List(ctx, "", store.ListOptions{})
					require.NoError(t, err)
					gotList, err := sqlS.List(ctx, "", store.ListOptions{})
					require.NoError(t, err)
					require.Equal(t, normalize(wantList.KVs), normalize(gotList.KVs), "step %d", i)
					require.Equal(t, wantList.Revision, gotList.Revision)
				}
			}
			rev, err := model.Revision(ctx)
			require.NoError(t, err)
			require.Equal(t, normalizeEvents(history(t, model, rev)), normalizeEvents(history(t, sqlS, rev)))
		})
	}
}

// history returns every event from revision 2 to upto.
func history(t *testing.T, s store.Store, upto int64) []store.Event {
	t.Helper()
	w, err := s.Watch(ctxT(t), "", 2)
	require.NoError(t, err)
	defer w.Close()
	var events []store.Event
	for upto > 1 && (len(events) == 0 || events[len(events)-1].KV.ModRevision < upto) {
		select {
		case resp := <-w.Events():
			require.NoError(t, resp.Err)
			events = append(events, resp.Events...)
		case <-time.After(10 * time.Second):
			t.Fatalf("history stalled at %d events", len(events))
		}
	}
	return events
}

// normalize makes empty values comparable (nil and empty are the same).
func normalize(kvs []store.KV) []store.KV {
	out := make([]store.KV, len(kvs))
	for i, kv := range kvs {
		if len(kv.Value) == 0 {
			kv.Value = nil
		}
		out[i] = kv
	}
	return out
}

func normalizeEvents(events []store.Event) []store.Event {
	out := make([]store.Event, len(events))
	for i, ev := range events {
		ev.KV = normalize([]store.KV{ev.KV})[0]
		out[i] = ev
	}
	return out
}
