package spdktest_test

import (
	"context"
	"testing"

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
