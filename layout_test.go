package vda

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLvstoreDataBytes(t *testing.T) {
	for _, tc := range []struct{ dev, cluster, want uint64 }{
		// Real spdk_tgt (ARCHITECTURE's spdk/transcripts): total_data_clusters.
		{64 << 20, 4 << 20, 15 * 4 << 20},
		{128 << 20, 4 << 20, 31 * 4 << 20},
		{192 << 20, 4 << 20, 47 * 4 << 20},
		{256 << 20, 4 << 20, 63 * 4 << 20},
		{4 << 20, 4 << 20, 0},
		{0, 4 << 20, 0},
		{1 << 30, 0, 0},
	} {
		require.Equal(t, tc.want, LvstoreDataBytes(tc.dev, tc.cluster), "%+v", tc)
	}
}

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		size, physical        uint64
		stripes, stripKB      int
		cluster, vd, data, md uint64
	}{
		{"tutorial da0", 32 << 20, 32 << 20, 2, 64, 4 << 20, 20 << 20, 8, 1},
		{"tutorial da1", 64 << 20, 0, 2, 64, 4 << 20, 36 << 20, 16, 1},
		{"8k clusters", 3 * 8192, 0, 1, 4, 8192, 4 << 20, 3, 7},
		{"small cluster", 96 << 10, 0, 3, 4, 32 << 10, 4 << 20, 3, 1},
		{"thick physical", 32 << 20, 96 << 20, 4, 128, 4 << 20, 28 << 20, 24, 1},
		{"1 TiB", 1 << 40, 0, 8, 1024, 4 << 20, 131204 << 20, 262144, 257},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Layout(tc.size, tc.physical, tc.stripes, tc.stripKB)
			require.NoError(t, err)
			require.Equal(t, tc.cluster, l.ClusterBytes, "cluster")
			require.Equal(t, tc.data, l.DataClusters, "data clusters")
			require.Equal(t, tc.md, l.MetadataClusters, "metadata clusters")
			require.Equal(t, tc.vd, l.VDSizeBytes, "vd size")
			require.Zero(t, l.VDSizeBytes%PDClusterBytes)
			require.Zero(t, tc.size%l.ClusterBytes, "da size is whole clusters")
			// The DA lvol (physical size) fits the lvstore on the raid.
			require.GreaterOrEqual(t, LvstoreDataBytes(l.RaidBytes, l.ClusterBytes), l.DataClusters*l.ClusterBytes)
		})
	}
}

func TestLayoutInvalid(t *testing.T) {
	for _, tc := range []struct {
		size, physical   uint64
		stripes, stripKB int
	}{
		{0, 0, 2, 64},
		{4097, 0, 2, 64},
		{3 * 4096, 0, 1, 4},
		{32 << 20, 16 << 20, 2, 64},
		{32 << 20, 32<<20 + 1, 2, 64},
		{MaxDASizeBytes + 4096, 0, 2, 64},
		{32 << 20, 0, 0, 64},
		{32 << 20, 0, MaxStripeCount + 1, 64},
		{32 << 20, 0, 2, 0},
		{32 << 20, 0, 2, 2},
		{32 << 20, 0, 2, 48},
		{32 << 20, 0, 2, 2048},
	} {
		_, err := Layout(tc.size, tc.physical, tc.stripes, tc.stripKB)
		require.True(t, errors.Is(err, ErrInvalidArgument), "%+v: %v", tc, err)
	}
}
