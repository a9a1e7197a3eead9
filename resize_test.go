package vda_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// MaxSizeBytes is exactly what real spdk_tgt v24.01 reported as
// total_data_clusters of an lvstore (cluster size, 100 metadata pages per
// 100 clusters) on a bdev of the raid's size, for the layouts Layout makes.
func TestMaxSizeBytesMatchesSPDK(t *testing.T) {
	for _, tc := range []struct {
		size            uint64
		stripes, kb     int
		raid, cluster   uint64
		spdkDataClusers uint64
	}{
		{32 << 20, 2, 64, 41943040, 4194304, 9},
		{8<<20 + 8192, 2, 64, 25165824, 8192, 1534},
		{16<<20 + 65536, 1, 128, 20971520, 65536, 299},
		{25 << 20, 3, 4, 37748736, 1048576, 35},
		{40<<20 + 512<<10, 2, 1024, 50331648, 524288, 95},
		{20<<20 + 16384, 4, 16, 33554432, 16384, 1535},
	} {
		l, err := vda.Layout(tc.size, 0, tc.stripes, tc.kb)
		require.NoError(t, err)
		da := vda.DiskArray{SizeBytes: tc.size, PhysicalSizeBytes: tc.size, StripeCount: tc.stripes, StripeSizeKB: tc.kb,
			ClusterBytes: l.ClusterBytes, VDSizeBytes: l.VDSizeBytes}
		require.Equal(t, tc.raid, da.RaidBytes(), "%+v", tc)
		require.Equal(t, tc.cluster, da.ClusterBytes, "%+v", tc)
		require.Equal(t, tc.spdkDataClusers*tc.cluster, da.MaxSizeBytes(), "%+v", tc)
		require.GreaterOrEqual(t, da.MaxSizeBytes(), tc.size)
	}
}

func TestQoSValidate(t *testing.T) {
	for _, q := range []vda.QoS{{}, {RWIOsPerSec: 1000}, {RWIOsPerSec: vda.MaxQoSIOPS}, {RWMBytesPerSec: 1},
		{ReadMBytesPerSec: vda.MaxQoSMBytesPerSec, WriteMBytesPerSec: 7}} {
		require.NoError(t, q.Validate(), "%+v", q)
	}
	for _, q := range []vda.QoS{{RWIOsPerSec: 1}, {RWIOsPerSec: 1500}, {RWIOsPerSec: vda.MaxQoSIOPS + 1000},
		{RWMBytesPerSec: vda.MaxQoSMBytesPerSec + 1}, {ReadMBytesPerSec: ^uint64(0)}, {WriteMBytesPerSec: 1 << 40}} {
		require.ErrorIs(t, q.Validate(), vda.ErrInvalidArgument, "%+v", q)
	}
}

func daRevision(t *testing.T, s store.Store, name string) int64 {
	t.Helper()
	kv, err := s.Get(context.Background(), vda.KeyDA(name))
	require.NoError(t, err)
	return kv.ModRevision
}

// Growing a DA: up to what its lvstore holds, in whole clusters, never
// shrinking; a refused request changes nothing, a repeated one writes
// nothing.
func TestModifyDiskArraySize(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	da, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 24 << 20,
		PhysicalSizeBytes: 40 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	max := da.MaxSizeBytes()
	require.GreaterOrEqual(t, max, uint64(40<<20), "at least the physical size")
	require.Zero(t, max%da.ClusterBytes)

	size := func(v uint64) vda.DiskArrayUpdate { return vda.DiskArrayUpdate{SizeBytes: &v} }
	rev := daRevision(t, s, "da0")
	for _, tc := range []struct {
		size uint64
		want error
		msg  string
	}{
		{16 << 20, vda.ErrFailedPrecondition, "shrinking is refused"},
		{max + da.ClusterBytes, vda.ErrResourceExhausted, "at most"},
		{24<<20 + 4096, vda.ErrInvalidArgument, "not a multiple of"},
		{0, vda.ErrInvalidArgument, "positive"},
		{24<<20 + 100, vda.ErrInvalidArgument, "multiple of 4096"},
		{vda.MaxDASizeBytes + 4096, vda.ErrInvalidArgument, "exceeds"},
	} {
		_, err := c.ModifyDiskArray(ctx, "da0", size(tc.size))
		require.ErrorIs(t, err, tc.want, "%d", tc.size)
		require.ErrorContains(t, err, tc.msg)
	}
	_, err = c.ModifyDiskArray(ctx, "da0", size(max+da.ClusterBytes))
	require.ErrorContains(t, err, "at most "+strconv.FormatUint(max, 10)+" bytes", "says how much fits")
	require.Equal(t, rev, daRevision(t, s, "da0"), "refused requests change nothing")

	got, err := c.ModifyDiskArray(ctx, "da0", size(24<<20))
	require.NoError(t, err, "the same size")
	require.Equal(t, rev, daRevision(t, s, "da0"), "no write")
	require.EqualValues(t, 24<<20, got.SizeBytes)

	got, err = c.ModifyDiskArray(ctx, "da0", size(max))
	require.NoError(t, err)
	require.Equal(t, max, got.SizeBytes)
	require.Equal(t, da.PhysicalSizeBytes, got.PhysicalSizeBytes)
	require.Equal(t, da.VDs, got.VDs, "no new space is placed")
	rev = daRevision(t, s, "da0")
	_, err = c.ModifyDiskArray(ctx, "da0", size(max))
	require.NoError(t, err, "repeated")
	require.Equal(t, rev, daRevision(t, s, "da0"))
	got, err = c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Equal(t, max, got.SizeBytes)

	_, err = c.ModifyDiskArray(ctx, "nope", size(max))
	require.ErrorIs(t, err, vda.ErrNotFound)
}

func TestModifyDiskArrayQoS(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	_, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 1, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	q := vda.QoS{RWIOsPerSec: 10000, WriteMBytesPerSec: 50}
	da, err := c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{QoS: &q})
	require.NoError(t, err)
	require.Equal(t, q, da.QoS)
	rev := daRevision(t, s, "da0")

	bad := vda.QoS{RWIOsPerSec: 2500}
	big := uint64(32<<20) * 2
	_, err = c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{QoS: &bad, SizeBytes: &big})
	require.ErrorIs(t, err, vda.ErrInvalidArgument)
	require.ErrorContains(t, err, "multiple of 1000")
	desc := "x"
	_, err = c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{QoS: &q, Description: &desc, SizeBytes: new(uint64(16 << 20))})
	require.ErrorIs(t, err, vda.ErrFailedPrecondition, "one bad field refuses the whole update")
	require.Equal(t, rev, daRevision(t, s, "da0"))

	_, err = c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{QoS: &q})
	require.NoError(t, err)
	require.Equal(t, rev, daRevision(t, s, "da0"), "the same limits: no write")
	got, err := c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Equal(t, q, got.QoS)
	require.Empty(t, got.Description)

	da, err = c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{Description: &desc})
	require.NoError(t, err)
	require.Equal(t, q, da.QoS, "an update without QoS keeps it")
	da, err = c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{QoS: &vda.QoS{}})
	require.NoError(t, err)
	require.True(t, da.QoS.IsZero(), "the zero QoS removes the limits")
}
