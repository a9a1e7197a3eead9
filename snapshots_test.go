package vda_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

func snapCluster(t *testing.T) (*vda.Cluster, store.Store, vda.DiskArray) {
	s := newStore(t)
	c := newCluster(t, s)
	tutorialCluster(t, c)
	da, err := c.CreateDiskArray(context.Background(), vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20,
		PhysicalSizeBytes: 64 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	return c, s, da
}

func TestSnapshotsAndClonesLifecycle(t *testing.T) {
	ctx := context.Background()
	c, s, da := snapCluster(t)

	snap, err := c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "s0", Description: "before the upgrade"})
	require.NoError(t, err)
	require.Len(t, snap.ID, 32)
	require.Equal(t, da.ID, snap.DAID)
	require.Equal(t, da.SizeBytes, snap.SizeBytes)
	require.False(t, snap.Ready(), "not taken until the primary reports it")
	again, err := c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "s0", Description: "before the upgrade"})
	require.NoError(t, err, "a repeated create returns the snapshot")
	require.Equal(t, snap.ID, again.ID)
	_, err = c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "s0", Description: "other"})
	require.ErrorIs(t, err, vda.ErrAlreadyExists)

	putStatus(t, s, vda.KeySnap("da0", "s0"), vda.Status{Health: vda.HealthHealthy})
	got, err := c.GetSnapshot(ctx, "da0", "s0")
	require.NoError(t, err)
	require.True(t, got.Ready())

	cl, err := c.CreateClone(ctx, vda.CloneSpec{DAName: "da0", Name: "c0", SnapName: "s0"})
	require.NoError(t, err)
	require.Equal(t, snap.ID, cl.SnapID)
	require.Equal(t, snap.SizeBytes, cl.SizeBytes)
	got, err = c.GetSnapshot(ctx, "da0", "s0")
	require.NoError(t, err)
	require.Equal(t, 1, got.CloneCount)

	// Exported: neither the snapshot nor the clone can go; a second
	// exporter of the same snapshot is refused, naming the first.
	_, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "es", InitiatorNQN: "nqn.2016-06.io.spdk:host0", SnapName: "s0"})
	require.NoError(t, err)
	_, err = c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "es2", InitiatorNQN: "nqn.2016-06.io.spdk:host1", SnapName: "s0"})
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, `"es"`)
	exp, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "ec", InitiatorNQN: "nqn.2016-06.io.spdk:host0", CloneName: "c0"})
	require.NoError(t, err)
	require.Equal(t, cl.ID, exp.CloneID)
	require.Equal(t, "nqn.2016-06.io.spdk:vda-exp-da0-ec", exp.NQN, "the exporter NQN scheme")
	err = c.DeleteSnapshot(ctx, "da0", "s0")
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, "exporter")
	require.ErrorIs(t, c.DeleteClone(ctx, "da0", "c0"), vda.ErrFailedPrecondition)
	err = c.DeleteDiskArray(ctx, "da0")
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)

	require.NoError(t, c.DeleteExporter(ctx, "da0", "es"))
	err = c.DeleteSnapshot(ctx, "da0", "s0")
	require.ErrorIs(t, err, vda.ErrFailedPrecondition, "the clone depends on it")
	require.ErrorContains(t, err, `"c0"`)

	// Grow and inflate the clone; the stale status is cleared.
	putStatus(t, s, vda.KeyClone("da0", "c0"), vda.Status{Health: vda.HealthHealthy})
	_, err = c.ModifyClone(ctx, "da0", "c0", vda.CloneUpdate{SizeBytes: new(uint64(16 << 20))})
	require.ErrorIs(t, err, vda.ErrInvalidArgument, "shrinking")
	_, err = c.ModifyClone(ctx, "da0", "c0", vda.CloneUpdate{SizeBytes: new(uint64(128 << 20))})
	require.ErrorIs(t, err, vda.ErrInvalidArgument, "past the physical size")
	_, err = c.ModifyClone(ctx, "da0", "c0", vda.CloneUpdate{SizeBytes: new(uint64(32<<20 + 4096))})
	require.ErrorIs(t, err, vda.ErrInvalidArgument, "not whole clusters")
	cl, err = c.ModifyClone(ctx, "da0", "c0", vda.CloneUpdate{SizeBytes: new(uint64(64 << 20)), Inflate: true})
	require.NoError(t, err)
	require.Equal(t, uint64(64<<20), cl.SizeBytes)
	require.True(t, cl.Inflate)
	require.False(t, cl.Inflated(), "until the primary reports it")
	require.ErrorIs(t, c.DeleteSnapshot(ctx, "da0", "s0"), vda.ErrFailedPrecondition)
	putStatus(t, s, vda.KeyClone("da0", "c0"), vda.Status{Health: vda.HealthHealthy})
	cl, err = c.GetClone(ctx, "da0", "c0")
	require.NoError(t, err)
	require.True(t, cl.Inflated())

	// A clone grown without inflating cannot be inflated later (SPDK
	// v24.01 fails it).
	_, err = c.CreateClone(ctx, vda.CloneSpec{DAName: "da0", Name: "c1", SnapName: "s0"})
	require.NoError(t, err)
	_, err = c.ModifyClone(ctx, "da0", "c1", vda.CloneUpdate{SizeBytes: new(uint64(64 << 20))})
	require.NoError(t, err)
	_, err = c.ModifyClone(ctx, "da0", "c1", vda.CloneUpdate{Inflate: true})
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, "inflate a clone before or while growing it")
	require.NoError(t, c.DeleteClone(ctx, "da0", "c1"))

	// Inflated: the snapshot can go, the clone stays.
	require.NoError(t, c.DeleteSnapshot(ctx, "da0", "s0"))
	_, err = c.GetSnapshot(ctx, "da0", "s0")
	require.ErrorIs(t, err, vda.ErrNotFound)
	require.NoError(t, c.DeleteExporter(ctx, "da0", "ec"))
	err = c.DeleteDiskArray(ctx, "da0")
	require.ErrorIs(t, err, vda.ErrFailedPrecondition)
	require.ErrorContains(t, err, `clone "c0"`)
	require.NoError(t, c.DeleteClone(ctx, "da0", "c0"))
	arr, err := c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Zero(t, arr.SnapCount)
	require.Zero(t, arr.CloneCount)
	require.NoError(t, c.DeleteDiskArray(ctx, "da0"))
}

func TestSnapshotsValidation(t *testing.T) {
	ctx := context.Background()
	c, s, _ := snapCluster(t)
	before, err := s.List(ctx, vda.Prefix, store.ListOptions{})
	require.NoError(t, err)
	for name, err := range map[string]error{
		"bad snap name": func() error {
			_, err := c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "a/b"})
			return err
		}(),
		"snap name starting with a dot": func() error {
			_, err := c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: ".x"})
			return err
		}(),
		"missing DA": func() error {
			_, err := c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "nope", Name: "s"})
			return err
		}(),
		"missing snapshot for a clone": func() error {
			_, err := c.CreateClone(ctx, vda.CloneSpec{DAName: "da0", Name: "c", SnapName: "nope"})
			return err
		}(),
		"exporter of a missing snapshot": func() error {
			_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "e", InitiatorNQN: "nqn.2016-06.io.spdk:h", SnapName: "nope"})
			return err
		}(),
		"exporter of a snapshot and a clone": func() error {
			_, err := c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "e", InitiatorNQN: "nqn.2016-06.io.spdk:h",
				SnapName: "a", CloneName: "b"})
			return err
		}(),
		"delete a missing snapshot": c.DeleteSnapshot(ctx, "da0", "nope"),
		"delete a missing clone":    c.DeleteClone(ctx, "da0", "nope"),
	} {
		require.Error(t, err, name)
		require.True(t, isOneOf(err, vda.ErrInvalidArgument, vda.ErrNotFound), "%s: %v", name, err)
	}
	after, err := s.List(ctx, vda.Prefix, store.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, before.Revision, after.Revision, "a failed request changes nothing")
}

func isOneOf(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
