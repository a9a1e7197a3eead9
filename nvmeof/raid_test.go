package nvmeof

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRaidUUIDCarriesTheEpoch(t *testing.T) {
	da := NewID()
	for _, e := range []int64{0, 1, 2, 1 << 20, MaxRaidEpoch} {
		u := RaidUUID(da, e)
		require.Len(t, u, 36)
		require.Equal(t, byte('8'), u[14], "version 8")
		require.Contains(t, "89ab", string(u[19]), "RFC variant")
		got, ok := RaidEpoch(da, u)
		require.True(t, ok)
		require.Equal(t, e, got)
		got, ok = RaidEpoch(da, strings.ToUpper(u))
		require.True(t, ok, "SPDK may print upper case")
		require.Equal(t, e, got)
		_, ok = RaidEpoch(NewID(), u)
		require.False(t, ok, "another array's raid")
	}
	require.NotEqual(t, RaidUUID(da, 1), RaidUUID(NewID(), 1))
	for _, bad := range []string{"", "00000000-0000-0000-0000-000000000000", "zz", RaidUUID(da, 1)[:35]} {
		_, ok := RaidEpoch(da, bad)
		require.False(t, ok, bad)
	}
}
