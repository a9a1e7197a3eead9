package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCNForEachRunsEachItemOnceWithinTheLimit(t *testing.T) {
	for _, tc := range []struct{ limit, items int }{{0, 3}, {1, 5}, {4, 1}, {4, 100}, {256, 10}} {
		items := make([]int, tc.items)
		for i := range items {
			items[i] = i
		}
		var mu sync.Mutex
		seen := map[int]int{}
		var running, peak atomic.Int64
		// With limit > 1, the first min(limit, items) items wait for each
		// other, so the test fails if they do not run at once.
		want := int64(min(max(tc.limit, 1), tc.items))
		var gate sync.WaitGroup
		gate.Add(int(want))
		cnForEach(context.Background(), tc.limit, items, func(_ context.Context, it int) {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			if it < int(want) {
				gate.Done()
				gate.Wait()
			}
			mu.Lock()
			seen[it]++
			mu.Unlock()
		})
		require.Len(t, seen, tc.items, "limit %d", tc.limit)
		for it, n := range seen {
			require.Equal(t, 1, n, "item %d ran %d times", it, n)
		}
		require.Equal(t, want, peak.Load(), "limit %d, %d items: peak concurrency", tc.limit, tc.items)
	}
}
