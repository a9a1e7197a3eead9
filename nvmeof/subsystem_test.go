package nvmeof

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSerialNumber(t *testing.T) {
	n, err := ExpNQN("da0", "exp0")
	require.NoError(t, err)
	sn := SerialNumber(n)
	assert.Len(t, sn, MaxSerialNumberLen)
	assert.Regexp(t, `^[0-9a-f]{20}$`, sn)
	assert.Equal(t, sn, SerialNumber(NQN("nqn.2016-06.io.spdk:vda-exp-da0-exp0")), "deterministic")
	// Golden value: every controller of an exporter, in every release,
	// must compute the same serial number.
	assert.Equal(t, "444812abf334aba4ca06", sn) // python3: hashlib.sha256(nqn).hexdigest()[:20]

	seen := map[string]NQN{}
	for i := range 1000 {
		n := VDNQN(fmt.Sprintf("%032x", i))
		s := SerialNumber(n)
		require.NotContains(t, seen, s)
		seen[s] = n
	}
}

func TestNamespaceUUID(t *testing.T) {
	n, err := ExpNQN("da0", "exp0")
	require.NoError(t, err)
	u := NamespaceUUID(n)
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, u, "version 5, RFC variant")
	assert.Equal(t, u, NamespaceUUID(n))
	assert.Equal(t, "f3ae631d-dc35-592b-887d-95d48d6029bb", u, "golden (python3 uuid.uuid5): must never change")
	other, err := ExpNQN("da0", "exp1")
	require.NoError(t, err)
	assert.NotEqual(t, u, NamespaceUUID(other))
	assert.True(t, isUUID(u))
}

func TestModelNumber(t *testing.T) {
	assert.Equal(t, "VDA_CONTROLLER", ModelNumber)
}

func TestControllerIDRange(t *testing.T) {
	lo, hi, err := ControllerIDRange(0)
	require.NoError(t, err)
	assert.Equal(t, [2]uint16{1, 1000}, [2]uint16{lo, hi})
	lo, hi, err = ControllerIDRange(1)
	require.NoError(t, err)
	assert.Equal(t, [2]uint16{1001, 2000}, [2]uint16{lo, hi}, "the recording's secondary range")

	prevHi := uint16(0)
	for i := 0; i <= MaxControllerIndex; i++ {
		lo, hi, err := ControllerIDRange(i)
		require.NoError(t, err, i)
		assert.Greater(t, lo, prevHi, "ranges are disjoint and increasing")
		assert.LessOrEqual(t, lo, hi)
		assert.GreaterOrEqual(t, lo, uint16(MinCntlID))
		assert.LessOrEqual(t, hi, uint16(MaxCntlID))
		prevHi = hi
	}
	assert.Equal(t, 64, MaxControllerIndex)
	for _, bad := range []int{-1, MaxControllerIndex + 1, 1 << 40} {
		_, _, err := ControllerIDRange(bad)
		assert.ErrorIs(t, err, ErrControllerIndex, bad)
	}
}
