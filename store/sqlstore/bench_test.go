package sqlstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
)

// BenchmarkStore measures transactions/s (a compare-and-swap put on a key
// of the client's own, so none conflict) and reads/s (Get) with 1 and 16
// concurrent clients of one Store, on each SQL backend.
//
//	eval "$(scripts/sqlservers start)"
//	go test -run '^$' -bench BenchmarkStore -benchtime 2s ./store/sqlstore/
//
// memstore runs too, as the reference the SQL numbers compare with.
func BenchmarkStore(b *testing.B) {
	type target struct {
		name string
		open func(b *testing.B) store.Store
	}
	targets := []target{{"memstore", func(b *testing.B) store.Store {
		s, err := memstore.New(memstore.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		return s
	}}}
	for _, be := range sqltest.Backends() {
		targets = append(targets, target{be.Name, func(b *testing.B) store.Store { return newStore(b, be) }})
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			s := tg.open(b)
			if _, err := s.Txn(context.Background(), store.Txn{
				Ops: []store.Op{{Key: "read/key", Value: make([]byte, 256)}},
			}); err != nil {
				b.Fatal(err)
			}
			for _, clients := range []int{1, 16} {
				b.Run(fmt.Sprintf("txn/clients=%d", clients), func(b *testing.B) {
					benchClients(b, clients, "txn/s", func(ctx context.Context, c int, st *clientState) error {
						res, err := s.Txn(ctx, store.Txn{
							Conds: []store.Cond{{Key: st.key, ModRevision: st.rev}},
							Ops:   []store.Op{{Key: st.key, Value: []byte("value")}},
						})
						if err == nil && !res.Succeeded {
							err = fmt.Errorf("client %d: unexpected conflict", c)
						}
						st.rev = res.Revision
						return err
					})
				})
				b.Run(fmt.Sprintf("get/clients=%d", clients), func(b *testing.B) {
					benchClients(b, clients, "reads/s", func(ctx context.Context, _ int, st *clientState) error {
						_, err := s.Get(ctx, "read/key")
						return err
					})
				})
			}
		})
	}
}

type clientState struct {
	key string
	rev int64 // ModRevision of the client's last write to key (0: absent)
}

// benchClients runs b.N operations spread over n goroutines and reports
// their rate as unit.
func benchClients(b *testing.B, n int, unit string, op func(ctx context.Context, client int, st *clientState) error) {
	ctx := context.Background()
	b.Helper()
	// Fresh keys per run: b.N changes between runs, the store does not.
	run := time.Now().UnixNano()
	states := make([]*clientState, n)
	for i := range states {
		states[i] = &clientState{key: fmt.Sprintf("bench/%d/%d", run, i)}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for c := range n {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(ctx, c, states[c]); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit)
}
