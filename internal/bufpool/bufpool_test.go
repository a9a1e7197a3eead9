package bufpool

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// Buffers come back at the length asked for; GetZeroed's hold zeros even
// when recycled; Put keeps nothing larger than Max.
func TestPool(t *testing.T) {
	var p Pool
	for _, n := range []int{0, 1, 4096, 100} {
		b := p.Get(n)
		require.Len(t, *b, n)
		copy(*b, bytes.Repeat([]byte{0xff}, n))
		p.Put(b)
		z := p.GetZeroed(n)
		require.Equal(t, make([]byte, n), *z)
		p.Put(z)
	}
	small := Pool{Max: 8}
	big := make([]byte, 16)
	small.Put(&big)
	for range 10 { // sync.Pool may drop what it keeps; it never returns what Put refused
		got := small.Get(1)
		require.LessOrEqual(t, cap(*got), 8)
	}
}
