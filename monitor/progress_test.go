package monitor

import (
	"context"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/store"
)

// waiting starts w.waitProgress(d, mark) of w's newest plan and returns a
// channel closed when it returns.
func waiting(w *worker, d time.Duration, mark progressMark) <-chan struct{} {
	w.mu.Lock()
	np := w.plan
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); w.waitProgress(d, mark, np) }()
	return done
}

func returned(done <-chan struct{}) bool {
	synctest.Wait()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// A node whose objects are not ready retries once another node made
// progress, or a newer plan came, and not for its own progress.
func TestWaitProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &Monitor{}
		newWorker := func() *worker {
			return &worker{m: m, ctx: t.Context(), kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1)}
		}
		w, other := newWorker(), newWorker()
		state := deliveredOf(&agentpb.SyncRequest{NodeId: "n1"})

		mark := w.progressMark()
		w.noteProgress(state, 1) // its own push, after the mark
		done := waiting(w, time.Hour, mark)
		require.False(t, returned(done), "woken by its own progress")
		other.noteProgress(deliveredOf(&agentpb.SyncRequest{NodeId: "n2"}), 3)
		require.True(t, returned(done), "not woken by another node's progress")

		// Progress made during the push (after the mark) is not missed.
		mark = w.progressMark()
		other.noteProgress(deliveredOf(&agentpb.SyncRequest{NodeId: "n2", NodeName: "state2"}), 3)
		require.True(t, returned(waiting(w, time.Hour, mark)))

		// The same state with no more objects ready is no progress.
		mark = w.progressMark()
		other.noteProgress(deliveredOf(&agentpb.SyncRequest{NodeId: "n2", NodeName: "state2"}), 3)
		other.noteProgress(deliveredOf(&agentpb.SyncRequest{NodeId: "n2", NodeName: "state2"}), 2)
		done = waiting(w, time.Hour, mark)
		require.False(t, returned(done), "woken without progress")
		other.noteProgress(deliveredOf(&agentpb.SyncRequest{NodeId: "n2", NodeName: "state2"}), 3) // one more ready
		require.True(t, returned(done))

		// A newer plan ends the wait, and so does the backoff.
		done = waiting(w, time.Hour, w.progressMark())
		require.False(t, returned(done))
		poke(w.kick)
		require.True(t, returned(done))

		// A newer plan of the same state (the planner reused it) does not.
		dn := &agentpb.DnState{}
		planOf := func(st *agentpb.DnState) *NodePlan {
			return &NodePlan{ID: "n1", Request: &agentpb.SyncRequest{NodeId: "n1", State: &agentpb.SyncRequest_Dn{Dn: st}}}
		}
		w.plan = planOf(dn)
		done = waiting(w, time.Hour, w.progressMark())
		w.mu.Lock()
		w.plan = planOf(dn) // the next round's
		w.mu.Unlock()
		poke(w.kick)
		synctest.Wait()
		require.False(t, returned(done), "woken by an unchanged state")
		w.mu.Lock()
		w.plan = planOf(&agentpb.DnState{}) // rebuilt
		w.mu.Unlock()
		poke(w.kick)
		require.True(t, returned(done), "not woken by a new state")
		w.plan = nil
		done = waiting(w, time.Hour, w.progressMark())
		time.Sleep(time.Hour)
		require.True(t, returned(done))

		// Progress is acted on BackoffMin after the wait began, not sooner.
		m.cfg.BackoffMin = 100 * time.Millisecond
		done = waiting(w, time.Hour, w.progressMark())
		other.noteProgress(deliveredOf(&agentpb.SyncRequest{NodeId: "n2", NodeName: "state3"}), 3)
		require.False(t, returned(done), "retried before BackoffMin")
		time.Sleep(100 * time.Millisecond)
		require.True(t, returned(done))
	})
}

// A push's write-back skips what the worker last wrote when the snapshot
// holds it, and writes it when the snapshot or the worker's last write
// differ, or when the push is forced.
func TestWriteBackSkipsWhatTheSnapshotHolds(t *testing.T) {
	cs, tc, da, w, snapshot := writeBackFixture(t)
	vd := da.VDs[0]
	reply := func(ok bool) *agentpb.SyncReply {
		return &agentpb.SyncReply{Objects: []*agentpb.ObjectStatus{{Kind: agentpb.Kind_KIND_VD, Id: vd.ID, Ok: ok, Error: "x"}}}
	}
	part := func() vda.Status { return tc.da("da0").Status.Part(vd.ID) }
	writes := func(snap *Snapshot, np *NodePlan, r *agentpb.SyncReply, all bool) int64 {
		touched := func() int64 { return cs.statusReads.Load() + cs.statusTxns.Load() }
		before := touched()
		w.writeBack(snap, np, r, all)
		return touched() - before
	}

	snap, np := snapshot()
	require.Positive(t, writes(snap, np, reply(true), false), "first write-back")
	require.Equal(t, vda.HealthHealthy, part().Health)
	stale := snap // holds no status for the VD
	snap, np = snapshot()
	require.Zero(t, writes(snap, np, reply(true), false), "written before and in the snapshot")
	require.Positive(t, writes(snap, np, reply(true), true), "a forced push writes everything")

	// The VD flaps: the snapshot that holds "healthy" predates the write
	// of "degraded", which must not be taken as already there.
	require.Positive(t, writes(snap, np, reply(false), false))
	require.Equal(t, vda.HealthDegraded, part().Health)
	require.Positive(t, writes(snap, np, reply(true), false))
	require.Equal(t, vda.HealthHealthy, part().Health)

	// A snapshot that does not hold what the worker wrote last (others
	// wrote meanwhile, or it is older) is not trusted either.
	require.Positive(t, writes(stale, np, reply(true), false))
}

// Rounds start at least RoundInterval apart: a burst of changes is planned
// in a few rounds, not one per change.
func TestRoundsArePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newMemStore(t)
		cfg := testConfig(s, "m0")
		cfg.RoundInterval = 100 * time.Millisecond
		m, err := New(cfg)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		time.Sleep(time.Second)
		synctest.Wait()
		before := m.rounds.Load()
		// 100 spec changes, one every millisecond.
		for i := range 100 {
			_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.PrefixCN + "burst", Value: []byte(strconv.Itoa(i))}}})
			require.NoError(t, err)
			time.Sleep(time.Millisecond)
			synctest.Wait()
		}
		time.Sleep(time.Second)
		synctest.Wait()
		rounds := m.rounds.Load() - before
		require.Positive(t, rounds, "the changes were planned")
		require.LessOrEqual(t, rounds, int64(4), "rounds over 100 ms of changes, 100 ms apart")
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}

// A push whose report was partly dropped (the DA changed while the node
// applied it) writes again only what was dropped: the node's other
// statuses were written and are skipped, where before every status of the
// node was written again.
func TestWriteBackRewritesOnlyWhatWasDropped(t *testing.T) {
	ctx := context.Background()
	cs, tc, da, w, snapshot := writeBackFixture(t)
	vd := da.VDs[0]
	pdKey := vda.KeyPD(vd.DNName, vd.PDName)
	snap, np := snapshot()
	reply := &agentpb.SyncReply{Objects: []*agentpb.ObjectStatus{
		{Kind: agentpb.Kind_KIND_PD, Id: snap.PDs[pdKey].Spec.ID, Ok: true, TotalBytes: 1 << 30, FreeBytes: 1 << 29},
		{Kind: agentpb.Kind_KIND_VD, Id: vd.ID, Ok: true},
	}}
	old, _ := da.Primary()
	movePrimaryTo(t, cs, "da0", 1-old.Idx) // the DA changes while the node applies
	w.writeBack(snap, np, reply, false)
	require.True(t, w.stale, "the VD's edit was dropped")
	pd, err := tc.c.GetPhysicalDisk(ctx, vd.DNName, vd.PDName)
	require.NoError(t, err)
	require.Equal(t, vda.HealthHealthy, pd.Status.Health, "the PD's was written")
	require.Equal(t, vda.HealthUnknown, tc.da("da0").Status.Part(vd.ID).Health)

	touched := map[string]int{}
	cs.onTxn = func(t store.Txn) {
		for _, c := range t.Conds {
			touched[c.Key]++
		}
		for _, o := range t.Ops {
			touched[o.Key]++
		}
	}
	snap, np = snapshot()
	w.writeBack(snap, np, reply, false) // as pushOnce rewrites the dropped
	cs.onTxn = nil
	require.False(t, w.stale)
	require.Equal(t, vda.HealthHealthy, tc.da("da0").Status.Part(vd.ID).Health)
	require.Zero(t, touched[vda.KeyStatus(pdKey)], "the PD's status is not written again")
	require.Positive(t, touched[vda.KeyStatus(vda.KeyDA("da0"))])
}

// The same when the snapshot cache has already seen the DA change (the
// edit is dropped before any read or commit): the push's write-back leaves
// the VD's status unwritten and the worker stale, no commit fails, and the
// write-back against the cache's next snapshot writes it. A dropped edit
// ends written, not only at the next forced resync.
func TestWriteBackRewritesWhatTheCacheDropped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs, tc, da, w, snapshot := writeBackFixture(t)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.m.snaps.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	caughtUp := func() *Snapshot {
		rev, err := cs.Revision(ctx)
		require.NoError(t, err)
		snap, err := w.m.snaps.AtLeast(ctx, rev)
		require.NoError(t, err)
		return snap
	}
	vd := da.VDs[0]
	snap, np := snapshot()
	reply := &agentpb.SyncReply{Objects: []*agentpb.ObjectStatus{{Kind: agentpb.Kind_KIND_VD, Id: vd.ID, Ok: true}}}
	old, _ := da.Primary()
	movePrimaryTo(t, cs, "da0", 1-old.Idx) // the DA changes while the node applies
	caughtUp()
	failed := cs.failedTxns.Load()
	w.writeBack(snap, np, reply, false)
	require.True(t, w.stale, "the VD's edit was dropped")
	require.Equal(t, failed, cs.failedTxns.Load(), "dropped before a commit")
	require.Equal(t, vda.HealthUnknown, tc.da("da0").Status.Part(vd.ID).Health)

	snap = caughtUp()
	w.writeBack(snap, Build(snap).Nodes[vd.DNID], reply, false) // as pushOnce rewrites the dropped
	require.False(t, w.stale)
	require.Equal(t, vda.HealthHealthy, tc.da("da0").Status.Part(vd.ID).Health, "written against the next snapshot")
}

// writeBackFixture is a DA of 2 VDs and 2 controllers on a counted memory
// store, and the worker of its first VD's disk node (its monitor does not
// run); snapshot reads the store and plans that node.
func writeBackFixture(t *testing.T) (*countingStore, *cluster, vda.DiskArray, *worker, func() (*Snapshot, *NodePlan)) {
	ctx := context.Background()
	cs := &countingStore{Store: newMemStore(t)}
	tc := newTestCluster(t, cs, 2, 2)
	da := tc.createDA("da0", 2, 2)
	m, err := New(testConfig(cs, "m0"))
	require.NoError(t, err)
	vd := da.VDs[0]
	snapshot := func() (*Snapshot, *NodePlan) {
		snap, err := LoadSnapshot(ctx, cs)
		require.NoError(t, err)
		return snap, Build(snap).Nodes[vd.DNID]
	}
	return cs, tc, da, &worker{m: m, ctx: ctx, id: vd.DNID, role: RoleDN, log: m.log}, snapshot
}
