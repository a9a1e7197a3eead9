package memstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// keySet against a sorted slice, through enough inserts and deletes to
// split chunks and empty them.
func TestKeySetMatchesSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ks keySet
	var want []string
	check := func() {
		t.Helper()
		var got []string
		ks.ascend("", func(k string) bool { got = append(got, k); return true })
		require.True(t, slices.Equal(want, got), "keys in order")
		require.Equal(t, len(want), ks.n)
		for _, ch := range ks.chunks {
			require.NotEmpty(t, ch)
			require.LessOrEqual(t, len(ch), maxChunk)
		}
		// From any start: the keys not before it.
		for range 20 {
			start := fmt.Sprintf("k%05d", rng.IntN(6000))
			i, _ := slices.BinarySearch(want, start)
			var from []string
			ks.ascend(start, func(k string) bool { from = append(from, k); return len(from) < 3 })
			require.True(t, slices.Equal(want[i:min(i+3, len(want))], from), "from %s: %v", start, from)
		}
	}
	for round := range 6 {
		for range 2000 {
			k := fmt.Sprintf("k%05d", rng.IntN(6000))
			i, found := slices.BinarySearch(want, k)
			insert := round%3 != 2 // every third round mostly deletes
			switch {
			case !found && insert:
				want = slices.Insert(want, i, k)
				ks.insert(k)
			case found && !insert:
				want = slices.Delete(want, i, i+1)
				ks.remove(k)
			}
		}
		check()
	}
	for len(want) > 0 {
		i := rng.IntN(len(want))
		ks.remove(want[i])
		want = slices.Delete(want, i, i+1)
	}
	check()
	require.Empty(t, ks.chunks)
}
