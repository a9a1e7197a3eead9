package blockdev

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// appendPayload writes what json.Marshal writes, or leaves the payload to
// it.
func TestAppendPayloadIsJSONMarshal(t *testing.T) {
	lay := &stripeLayout{Strip: 65536, Members: 2}
	for _, p := range []payload{
		{},
		{Name: "lvs", UUID: "u", ClusterSize: 1 << 20, ClearMethod: "unmap", MDRatio: 100, MDClusters: 3,
			TotalClusters: 1 << 40, BlockSize: 4096, Lvols: []lvolEntry{}},
		{Name: "lvs", Lvols: []lvolEntry{
			{Name: "a", UUID: "ua", Thin: true, ClearMethod: "none", Clusters: []uint32{}, NumClusters: 8},
			{Name: "b", UUID: "ub", Snapshot: true, ReadOnly: true, Parent: "ua", ClearMethod: "unmap",
				Clusters: []uint32{1, 0, 4294967295}},
			{Name: "c", UUID: "uc"},
		}, Layout: lay},
		{Name: "a<b", Lvols: []lvolEntry{{Name: "x"}}},
		{Name: "lvs", Lvols: []lvolEntry{{Name: "é\"\\\n&>"}}},
	} {
		want, err := json.Marshal(p)
		require.NoError(t, err)
		got, ok := appendPayload([]byte("prefix"), &p)
		if !ok {
			require.False(t, plainJSON(p.Name) && plainJSON(p.Lvols[0].Name), "fell back on plain strings: %+v", p)
			continue
		}
		require.Equal(t, "prefix"+string(want), string(got))
	}
}

func FuzzAppendPayload(f *testing.F) {
	f.Add("lvs", "uuid", "vd0", "none", "", uint64(1<<20), uint32(7), true, false, int64(65536))
	f.Add("a&b", "", "x\x00", "", "p", uint64(0), uint32(0), false, true, int64(0))
	f.Fuzz(func(t *testing.T, name, uuid, lvol, clear, parent string, size uint64, cl uint32, thin, ro bool, strip int64) {
		p := payload{Name: name, UUID: uuid, ClusterSize: size, ClearMethod: clear, MDRatio: cl, MDClusters: size / 3,
			TotalClusters: size, BlockSize: cl, Lvols: []lvolEntry{
				{Name: lvol, UUID: uuid, Thin: thin, ReadOnly: ro, Parent: parent, ClearMethod: clear,
					Clusters: []uint32{cl, 0, cl / 2}, NumClusters: size},
				{Name: name, Clusters: nil},
			}}
		if strip != 0 {
			p.Layout = &stripeLayout{Strip: strip, Members: int(cl)}
		}
		want, err := json.Marshal(p)
		require.NoError(t, err)
		if got, ok := appendPayload(nil, &p); ok {
			require.Equal(t, string(want), string(got))
		}
	})
}
