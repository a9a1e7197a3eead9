package realtier

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/multihost"
)

// TestRealSnapshots runs issue 16's snapshots and clones on real SPDK: a
// snapshot taken under host writes, a failover, the snapshot exported
// read-only from the new primary and read back bit-exact, and a clone
// written to while the snapshot stays unchanged.
func TestRealSnapshots(t *testing.T) {
	c := newCluster(t)
	t.Run("SnapshotFailoverExportClone", c.testSnapshots)
}

// snapOff is where the bit-exact pattern lives: past the ring the host's
// load writes (seqBlocks blocks), inside the array.
const snapOff = 24 << 20

func (c *cluster) testSnapshots(t *testing.T) {
	ctx := c.begin(t)
	// Physical room for the snapshot's data and an inflated (thick) clone
	// beside the array's own. The array's own exporter is "snape"
	// (createArray): the snapshot's is "snapx".
	a := c.createArrayOf(t, ctx, "snap", 3*daSize)
	// Runs before createArray's cleanup (which deletes the DA): the
	// snapshot's exporters, the clone and the snapshot go first.
	t.Cleanup(func() { c.deleteVolumes(t, a.name, []string{"snapx", "clonee"}, []string{"clone0"}, []string{"snap0"}) })
	h := c.connect(t, ctx, "host0", a.nqn(), hostNQN)
	before := bytes.Repeat([]byte("snapshot-before!"), (1<<20)/16)
	require.NoError(t, h.dev.WriteAt(ctx, 1, before, snapOff))

	// The snapshot is taken while the host writes; its writes all land.
	l := h.startLoad(t, ctx)
	l.waitAcks(t, 200, "before the snapshot")
	asked := time.Now()
	_, err := c.portal.CreateSnap(ctx, &pb.CreateSnapRequest{DaName: a.name, SnapName: "snap0"})
	require.NoError(t, err)
	c.waitSnapReady(t, ctx, a.name, "snap0")
	t.Logf("snapshot ready %v after it was asked for (portal, store, monitor, agent, SPDK)", ms(time.Since(asked)))
	l.waitAcks(t, 200, "after the snapshot")
	res := l.finish(t)
	h.verify(t, ctx, res)
	after := bytes.Repeat([]byte("volume-moved-on!"), (1<<20)/16)
	require.NoError(t, h.dev.WriteAt(ctx, 1, after, snapOff))
	_ = h.dev.Close()

	// Failover: the primary's node dies; the new primary re-assembles the
	// array and finds the snapshot in its lvstore.
	da := c.waitSettled(t, ctx, a, -1)
	old := primaryOf(da)
	victim := cnOf(da, old)
	c.kill(victim)
	multihost.WaitFor(t, 3*time.Minute, 100*time.Millisecond, "no healthy new primary", func() error {
		d, err := c.daGet(ctx, a.name)
		if err != nil {
			return err
		}
		if p := primaryOf(d); p < 0 || p == old || !primaryHealthy(d) {
			return fmt.Errorf("last: %v", d)
		}
		return nil
	})
	c.waitSnapReady(t, ctx, a.name, "snap0")
	c.restart(t, ctx, victim)
	c.waitSettled(t, ctx, a, 1-old)

	// Exported read-only: bit-exact through each controller and both.
	asked = time.Now()
	_, err = c.portal.CreateExp(ctx, &pb.CreateExpRequest{DaName: a.name, ExpName: "snapx", InitiatorNqn: hostNQN, SnapName: "snap0"})
	require.NoError(t, err)
	c.waitExpHealthy(t, ctx, a.name, "snapx")
	t.Logf("snapshot exported %v after it was asked for", ms(time.Since(asked)))
	snapNQN := "nqn.2016-06.io.spdk:vda-exp-" + a.name + "-snapx"
	got := make([]byte, len(before))
	for _, paths := range [][]string{{cnPaths["cn0"]}, {cnPaths["cn1"]}, {cnPaths["cn0"], cnPaths["cn1"]}} {
		sh := c.connect(t, ctx, "host0", snapNQN, hostNQN, paths...)
		require.Equal(t, uint64(daSize), uint64(sh.blockSize)*sh.blocks)
		require.NoError(t, sh.dev.ReadAt(ctx, 1, got, snapOff))
		require.True(t, bytes.Equal(before, got), "through %v: the snapshot holds what the array held when it was taken", paths)
		_ = sh.dev.Close()
	}
	sh := c.connect(t, ctx, "host0", snapNQN, hostNQN, cnPaths[cnOf(c.waitSettled(t, ctx, a, 1-old), 1-old)])
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = sh.dev.WriteAt(wctx, 1, after[:4096], snapOff)
	cancel()
	require.Error(t, err, "a snapshot is read-only")
	t.Logf("a write to the snapshot: %v", err)
	h = c.connect(t, ctx, "host0", a.nqn(), hostNQN)
	require.NoError(t, h.dev.ReadAt(ctx, 1, got, snapOff))
	require.True(t, bytes.Equal(after, got), "the array keeps its newer data")
	h.verify(t, ctx, res)

	// A clone: starts as the snapshot, takes writes, leaves it unchanged.
	asked = time.Now()
	_, err = c.portal.CreateClone(ctx, &pb.CreateCloneRequest{DaName: a.name, CloneName: "clone0", SnapName: "snap0"})
	require.NoError(t, err)
	c.waitCloneReady(t, ctx, a.name, "clone0")
	t.Logf("clone ready %v after it was asked for", ms(time.Since(asked)))
	_, err = c.portal.CreateExp(ctx, &pb.CreateExpRequest{DaName: a.name, ExpName: "clonee", InitiatorNqn: hostNQN, CloneName: "clone0"})
	require.NoError(t, err)
	c.waitExpHealthy(t, ctx, a.name, "clonee")
	ch := c.connect(t, ctx, "host0", "nqn.2016-06.io.spdk:vda-exp-"+a.name+"-clonee", hostNQN)
	require.NoError(t, ch.dev.ReadAt(ctx, 1, got, snapOff))
	require.True(t, bytes.Equal(before, got), "a clone starts as its snapshot")
	mine := bytes.Repeat([]byte("the clone's own!"), (1<<20)/16)
	require.NoError(t, ch.dev.WriteAt(ctx, 1, mine, snapOff))
	require.NoError(t, ch.dev.ReadAt(ctx, 1, got, snapOff))
	require.True(t, bytes.Equal(mine, got))
	sh = c.connect(t, ctx, "host0", snapNQN, hostNQN)
	require.NoError(t, sh.dev.ReadAt(ctx, 1, got, snapOff))
	require.True(t, bytes.Equal(before, got), "the snapshot is unchanged by its clone's writes")

	// Inflate (a clone is inflated before it grows: see vda.ModifyClone).
	asked = time.Now()
	_, err = c.portal.ModifyClone(ctx, &pb.ModifyCloneRequest{DaName: a.name, CloneName: "clone0", Inflate: true})
	require.NoError(t, err)
	c.waitCloneReady(t, ctx, a.name, "clone0")
	t.Logf("clone inflated %v after it was asked for", ms(time.Since(asked)))
	require.NoError(t, ch.dev.ReadAt(ctx, 1, got, snapOff))
	require.True(t, bytes.Equal(mine, got), "the inflated clone kept its data")
}

// createArrayOf is createArray with a physical size of its own.
func (c *cluster) createArrayOf(t *testing.T, ctx context.Context, name string, physical uint64) *array {
	t.Helper()
	a := &array{name: name, exp: name + "e"}
	multihost.WaitFor(t, time.Minute, 200*time.Millisecond, "da create "+name, func() error {
		_, err := c.portal.CreateDa(ctx, &pb.CreateDaRequest{DaName: name, CntlrCnt: 2, DaSize: daSize,
			PhysicalSize: physical, DaConf: daConf})
		return err
	})
	t.Cleanup(func() { c.deleteArrays(t, a) })
	_, err := c.portal.CreateExp(ctx, &pb.CreateExpRequest{DaName: name, ExpName: a.exp, InitiatorNqn: hostNQN})
	require.NoError(t, err)
	c.waitSettled(t, ctx, a, -1)
	return a
}

// waitSnapReady waits until the snapshot's primary reported it taken.
func (c *cluster) waitSnapReady(t testing.TB, ctx context.Context, da, snap string) {
	t.Helper()
	multihost.WaitFor(t, 3*time.Minute, 50*time.Millisecond, "snapshot "+snap+" never ready", func() error {
		r, err := c.portal.GetSnap(ctx, &pb.GetSnapRequest{DaName: da, SnapName: snap})
		if err != nil {
			return err
		}
		if !r.GetSnapMsg().GetReady() {
			return fmt.Errorf("last: %v", r.GetSnapMsg())
		}
		return nil
	})
}

// waitCloneReady waits until the clone's primary reported it as asked.
func (c *cluster) waitCloneReady(t testing.TB, ctx context.Context, da, clone string) {
	t.Helper()
	multihost.WaitFor(t, 3*time.Minute, 50*time.Millisecond, "clone "+clone+" never ready", func() error {
		r, err := c.portal.GetClone(ctx, &pb.GetCloneRequest{DaName: da, CloneName: clone})
		if err != nil {
			return err
		}
		if !r.GetCloneMsg().GetReady() {
			return fmt.Errorf("last: %v", r.GetCloneMsg())
		}
		return nil
	})
}

// waitExpHealthy waits until every port of the exporter reports no error.
func (c *cluster) waitExpHealthy(t testing.TB, ctx context.Context, da, exp string) {
	t.Helper()
	multihost.WaitFor(t, 3*time.Minute, 50*time.Millisecond, "exporter "+exp+" never healthy", func() error {
		r, err := c.portal.GetExp(ctx, &pb.GetExpRequest{DaName: da, ExpName: exp})
		if err != nil {
			return err
		}
		if r.GetExpMsg().GetStatus().GetHealth() != "healthy" {
			return fmt.Errorf("last: %v", r.GetExpMsg())
		}
		return nil
	})
}

// deleteVolumes deletes exporters, clones and snapshots of DA da, in that
// order (a missing one is fine).
func (c *cluster) deleteVolumes(t *testing.T, da string, exps, clones, snaps []string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, e := range exps {
		_, _ = c.portal.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: da, ExpName: e})
	}
	for _, cl := range clones {
		_, _ = c.portal.DeleteClone(ctx, &pb.DeleteCloneRequest{DaName: da, CloneName: cl})
	}
	for _, s := range snaps {
		if _, err := c.portal.DeleteSnap(ctx, &pb.DeleteSnapRequest{DaName: da, SnapName: s}); err != nil && status.Code(err) != codes.NotFound {
			t.Errorf("snap delete %s: %v", s, err)
		}
	}
}
