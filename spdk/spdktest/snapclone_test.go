package spdktest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

// What real SPDK v24.01 did (issue 16): a snapshot and its clones, a
// snapshot with one clone deleted and one with two refused, and a clone
// grown past its snapshot that cannot be inflated (SPDK reads the parent's
// cluster map past its end: EINVAL or ENOSPC), while one inflated first
// and grown after is fine.
func TestSnapshotCloneInflateAsRealSPDK(t *testing.T) {
	ctx := context.Background()
	srv := spdktest.NewServer(t)
	c, err := spdk.Dial(ctx, srv.SockPath())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: "M0", NumBlocks: 64 * 256, BlockSize: 4096})
	require.NoError(t, err)
	_, err = c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreParams{BdevName: "M0", LvsName: "lvs", ClusterSz: 1 << 20})
	require.NoError(t, err)
	_, err = c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{LvolName: "da", LvsName: "lvs", SizeInMiB: new(uint64(16)), ThinProvision: new(true)})
	require.NoError(t, err)
	for _, s := range []string{"snap0", "snap1"} {
		_, err = c.BdevLvolSnapshot(ctx, spdk.BdevLvolSnapshotParams{LvolName: "lvs/da", SnapshotName: s})
		require.NoError(t, err)
	}
	for _, cl := range []string{"clone0", "clone1"} {
		_, err = c.BdevLvolClone(ctx, spdk.BdevLvolCloneParams{SnapshotName: "lvs/snap0", CloneName: cl})
		require.NoError(t, err)
	}
	require.NoError(t, c.BdevLvolInflate(ctx, spdk.NameParams{Name: "lvs/clone1"}))
	require.NoError(t, c.BdevLvolResize(ctx, spdk.BdevLvolResizeParams{Name: "lvs/clone1", SizeInMiB: new(uint64(32))}))
	require.NoError(t, c.BdevLvolResize(ctx, spdk.BdevLvolResizeParams{Name: "lvs/clone0", SizeInMiB: new(uint64(32))}))
	err = c.BdevLvolInflate(ctx, spdk.NameParams{Name: "lvs/clone0"})
	require.ErrorContains(t, err, "Invalid argument", "grown past its snapshot")
	err = c.BdevLvolDelete(ctx, spdk.NameParams{Name: "lvs/snap0"})
	require.Error(t, err, "three clones: snap1 and clone0 (clone1 is inflated)")
	require.Contains(t, err.Error(), "Operation not permitted")
	require.NoError(t, c.BdevLvolDelete(ctx, spdk.NameParams{Name: "lvs/snap1"}), "one clone: the DA lvol")
}

// BenchmarkSnapshotCloneInflate times one bdev_lvol_snapshot, one
// bdev_lvol_clone of it and one bdev_lvol_inflate of that clone (16 MiB,
// thin), then deletes them, on the fake.
func BenchmarkSnapshotCloneInflate(b *testing.B) {
	ctx := context.Background()
	srv := spdktest.NewServer(b)
	c, err := spdk.Dial(ctx, srv.SockPath())
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	_, err = c.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: "M0", NumBlocks: 64 * 256, BlockSize: 4096})
	require.NoError(b, err)
	_, err = c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreParams{BdevName: "M0", LvsName: "lvs", ClusterSz: 1 << 20})
	require.NoError(b, err)
	_, err = c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{LvolName: "da", LvsName: "lvs", SizeInMiB: new(uint64(16)), ThinProvision: new(true)})
	require.NoError(b, err)
	var snap, clone, inflate time.Duration
	for b.Loop() {
		t0 := time.Now()
		_, err := c.BdevLvolSnapshot(ctx, spdk.BdevLvolSnapshotParams{LvolName: "lvs/da", SnapshotName: "s"})
		require.NoError(b, err)
		t1 := time.Now()
		_, err = c.BdevLvolClone(ctx, spdk.BdevLvolCloneParams{SnapshotName: "lvs/s", CloneName: "c"})
		require.NoError(b, err)
		t2 := time.Now()
		require.NoError(b, c.BdevLvolInflate(ctx, spdk.NameParams{Name: "lvs/c"}))
		t3 := time.Now()
		snap, clone, inflate = snap+t1.Sub(t0), clone+t2.Sub(t1), inflate+t3.Sub(t2)
		require.NoError(b, c.BdevLvolDelete(ctx, spdk.NameParams{Name: "lvs/c"}))
		require.NoError(b, c.BdevLvolDelete(ctx, spdk.NameParams{Name: "lvs/s"}))
	}
	n := float64(b.N)
	b.ReportMetric(float64(snap.Microseconds())/n, "snapshot-µs")
	b.ReportMetric(float64(clone.Microseconds())/n, "clone-µs")
	b.ReportMetric(float64(inflate.Microseconds())/n, "inflate-µs")
}
