package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vda-io/vda/store"
)

// BenchFactory returns a fresh, empty store for one benchmark.
type BenchFactory func(b *testing.B) store.Store

// BenchClients are the numbers of concurrent clients every benchmark runs with.
var BenchClients = []int{1, 16}

// Bench runs the shared benchmarks against the stores newStore returns:
// Txn (a compare-and-swap write of 256 bytes, each client on its own key),
// Get (a linearizable read of one of 1000 keys) and Update (a contended
// read-modify-write of one of 8 counters), each with 1 and 16 clients. Each
// reports ops/s besides ns/op (wall time per operation, all clients
// together).
func Bench(b *testing.B, newStore BenchFactory) {
	for _, clients := range BenchClients {
		b.Run(fmt.Sprintf("Txn/clients=%d", clients), func(b *testing.B) { benchTxn(b, newStore(b), clients) })
	}
	for _, clients := range BenchClients {
		b.Run(fmt.Sprintf("Get/clients=%d", clients), func(b *testing.B) { benchGet(b, newStore(b), clients) })
	}
	for _, clients := range BenchClients {
		b.Run(fmt.Sprintf("Update/clients=%d", clients), func(b *testing.B) { benchUpdate(b, newStore(b), clients) })
	}
}

// runClients runs b.N calls of op spread over clients goroutines.
func runClients(b *testing.B, clients int, op func(client int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ResetTimer()
	for c := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := op(c); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

func benchTxn(b *testing.B, s store.Store, clients int) {
	ctx := context.Background()
	value := make([]byte, 256)
	revs := make([]int64, clients) // each client owns revs[client]
	runClients(b, clients, func(c int) error {
		key := "bench/txn/" + strconv.Itoa(c)
		res, err := s.Txn(ctx, store.Txn{
			Conds: []store.Cond{{Key: key, ModRevision: revs[c]}},
			Ops:   []store.Op{{Key: key, Value: value}},
		})
		if err != nil {
			return err
		}
		if !res.Succeeded {
			return fmt.Errorf("uncontended CAS on %s failed", key)
		}
		revs[c] = res.Revision
		return nil
	})
}

func benchGet(b *testing.B, s store.Store, clients int) {
	ctx := context.Background()
	const keys = 1000
	value := make([]byte, 256)
	for i := 0; i < keys; i += store.MaxTxnOps {
		var ops []store.Op
		for j := i; j < min(i+store.MaxTxnOps, keys); j++ {
			ops = append(ops, store.Op{Key: fmt.Sprintf("bench/get/%04d", j), Value: value})
		}
		if _, err := s.Txn(ctx, store.Txn{Ops: ops}); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	runClients(b, clients, func(int) error {
		_, err := s.Get(ctx, fmt.Sprintf("bench/get/%04d", n.Add(1)%keys))
		return err
	})
}

func benchUpdate(b *testing.B, s store.Store, clients int) {
	ctx := context.Background()
	var n atomic.Int64
	runClients(b, clients, func(int) error {
		key := "bench/update/" + strconv.Itoa(int(n.Add(1)%8))
		return store.Update(ctx, s, func(tx *store.Tx) error { return increment(tx, key) })
	})
}
