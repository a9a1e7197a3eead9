package devcluster_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// volumeExported waits until the exporter's port on the DA's primary is
// healthy and returns the exporter.
func volumeExported(t *testing.T, api *vda.Cluster, name string) vda.Exporter {
	t.Helper()
	var exp vda.Exporter
	require.EventuallyWithT(t, func(ct *assertT) {
		ctx := context.Background()
		da, err := api.GetDiskArray(ctx, "da0")
		if !ok(ct, err) {
			return
		}
		p, _ := da.Primary()
		if exp, err = api.GetExporter(ctx, "da0", name); !ok(ct, err) {
			return
		}
		for _, port := range exp.Ports {
			if st := exp.Status.Part(port.ID); port.CntlrIdx == p.Idx && st.Health != vda.HealthHealthy {
				ct.Errorf("port %d: %q %s", port.CntlrIdx, st.Health, st.ErrorMsg)
			}
		}
	}, 60*time.Second, 20*time.Millisecond)
	return exp
}

// The dev cluster end to end for snapshots and clones: a snapshot taken
// while the host writes, a failover, the snapshot exported read-only from
// the new primary and read back bit-exact; a clone written to while the
// snapshot stays unchanged.
func TestSnapshotFailoverExportAndClone(t *testing.T) {
	c, _ := start(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api := c.API()
	_, err := api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20,
		PhysicalSizeBytes: 64 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	_, err = api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: hostNQN})
	require.NoError(t, err)
	exp := exported(t, api, 0)
	m := multipath(t, exp)
	const off = 16 << 20 // the pattern lives past the ring the writer below uses
	before := bytes.Repeat([]byte("snapshot-before!"), (1<<20)/16)
	require.NoError(t, m.WriteAt(ctx, 1, before, off))

	// The snapshot is taken while the host writes.
	stopWrites := make(chan struct{})
	results := make(chan fabric.SeqResult, 1)
	errs := make(chan error, 1)
	go func() {
		res, err := fabric.RunSeq(ctx, m, fabric.SeqWorkload{NSID: 1, BlockSize: 4096, Blocks: 2048, Stop: stopWrites})
		results <- res
		errs <- err
	}()
	require.Eventually(t, func() bool { return m.Stats().IOs > 50 }, time.Minute, time.Millisecond)
	took := time.Now()
	_, err = api.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "s0"})
	require.NoError(t, err)
	snap, err := api.WaitSnapshot(ctx, "da0", "s0", func(s vda.Snapshot, err error) bool { return err == nil && s.Ready() })
	require.NoError(t, err)
	t.Logf("snapshot ready %v after the request (store, monitor, agent, SPDK)", time.Since(took))
	close(stopWrites)
	res := <-results
	require.NoError(t, <-errs)
	require.NoError(t, fabric.VerifySeq(ctx, m, res), "the volume lost no write")
	after := bytes.Repeat([]byte("volume-moved-on!"), (1<<20)/16)
	require.NoError(t, m.WriteAt(ctx, 1, after, off))

	// Failover: the primary's node dies; the new primary finds the
	// snapshot in the lvstore it re-assembles.
	da, err := api.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	primary, _ := da.Primary()
	c.Node(primary.CNName).Kill()
	exported(t, api, 1)
	_, err = api.WaitSnapshot(ctx, "da0", "s0", func(s vda.Snapshot, err error) bool { return err == nil && s.Ready() })
	require.NoError(t, err)

	// Exported from the new primary: read-only, bit-exact.
	_, err = api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "es", InitiatorNQN: hostNQN, SnapName: "s0"})
	require.NoError(t, err)
	es := volumeExported(t, api, "es")
	sm := multipath(t, es)
	ns, err := sm.Namespace(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, snap.SizeBytes, uint64(ns.BlockSize)*ns.NumBlocks)
	got := make([]byte, len(before))
	require.NoError(t, sm.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(before, got), "the snapshot holds what the volume held when it was taken")
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	require.Error(t, sm.WriteAt(wctx, 1, after[:4096], off), "a snapshot is read-only")
	wcancel()
	require.NoError(t, m.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(after, got), "the volume keeps its newer data")

	// A clone of it, exported and written; the snapshot stays unchanged.
	took = time.Now()
	_, err = api.CreateClone(ctx, vda.CloneSpec{DAName: "da0", Name: "c0", SnapName: "s0"})
	require.NoError(t, err)
	_, err = api.WaitClone(ctx, "da0", "c0", func(c vda.Clone, err error) bool { return err == nil && c.Ready() })
	require.NoError(t, err)
	t.Logf("clone ready %v after the request", time.Since(took))
	_, err = api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "ec", InitiatorNQN: hostNQN, CloneName: "c0"})
	require.NoError(t, err)
	cm := multipath(t, volumeExported(t, api, "ec"))
	require.NoError(t, cm.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(before, got), "a clone starts as its snapshot")
	mine := bytes.Repeat([]byte("the clone's own!"), (1<<20)/16)
	require.NoError(t, cm.WriteAt(ctx, 1, mine, off))
	require.NoError(t, cm.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(mine, got))
	require.NoError(t, sm.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(before, got), "the snapshot is unchanged by its clone's writes")
	// Inflating makes the clone thick: it then holds its whole size in the
	// DA's lvstore, and so does what it grows by.
	took = time.Now()
	_, err = api.ModifyClone(ctx, "da0", "c0", vda.CloneUpdate{Inflate: true, SizeBytes: new(uint64(40 << 20))})
	require.NoError(t, err)
	cl, err := api.WaitClone(ctx, "da0", "c0", func(c vda.Clone, err error) bool { return err == nil && c.Inflated() })
	require.NoError(t, err)
	t.Logf("clone inflated and grown %v after the request", time.Since(took))
	require.Equal(t, uint64(40<<20), cl.SizeBytes)
	require.NoError(t, cm.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(mine, got), "the inflated clone kept its data")

	// Deletes in use are refused; in order they go.
	require.ErrorIs(t, api.DeleteSnapshot(ctx, "da0", "s0"), vda.ErrFailedPrecondition)
	require.ErrorIs(t, api.DeleteDiskArray(ctx, "da0"), vda.ErrFailedPrecondition)
	for _, e := range []string{"ec", "es"} {
		require.NoError(t, api.DeleteExporter(ctx, "da0", e))
	}
	require.NoError(t, api.DeleteClone(ctx, "da0", "c0"))
	require.NoError(t, api.DeleteSnapshot(ctx, "da0", "s0"))
	require.NoError(t, m.ReadAt(ctx, 1, got, off))
	require.True(t, bytes.Equal(after, got), "deleting the snapshot and clone left the volume alone")
}
