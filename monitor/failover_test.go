package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

func secondaryOf(req *agentpb.SyncRequest, cntlrID, primaryID string) bool {
	for _, c := range req.GetCn().GetCntlrs() {
		if c.GetCntlrId() == cntlrID {
			return !c.GetPrimary() && c.GetPrimaryCntlrId() == primaryID
		}
	}
	return false
}

// A CN hosting a three-controller DA's primary dies: the DA gets a new
// primary and a higher epoch; the DNs are fenced first (they admit only
// the new primary), then the new primary is pushed, then the other
// secondary is re-pointed. When the old CN returns it is pushed its new
// role, a secondary of the new primary, and the DA is healthy again.
func TestFailoverMovesPrimaryInOrder(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 3)
	before := tc.createDA("da0", 2, 3)
	m, _ := startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool {
		return tc.allConverged(tc.all()...) && tc.da("da0").Status.Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
	oldP, _ := before.Primary()
	oldCN := tc.agent(oldP.CNName)
	oldCN.Stop()

	eventually(t, func() bool { return tc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	da := tc.da("da0")
	newP, _ := da.Primary()
	// The engine's event stream told it: the node failed, then the move.
	var kinds []failover.EventKind
	for moved := false; !moved; {
		select {
		case ev := <-m.Engine().Events():
			switch {
			case ev.Kind == failover.NodeFailed && ev.Node == oldP.CNID:
				kinds = append(kinds, ev.Kind)
				require.Equal(t, failover.Refused, ev.Transition.Cause)
			case ev.Kind == failover.ArrayFailedOver:
				kinds, moved = append(kinds, ev.Kind), true
				require.Equal(t, before.ID, ev.ArrayID)
				require.Equal(t, oldP.ID, ev.Decision.OldPrimary.ID)
				require.Equal(t, newP.ID, ev.Decision.NewPrimary.ID)
				require.Equal(t, uint64(2), ev.Decision.Epoch)
			}
		case <-time.After(wait):
			t.Fatalf("no failover event; saw %v", kinds)
		}
	}
	require.Equal(t, []failover.EventKind{failover.NodeFailed, failover.ArrayFailedOver}, kinds)
	require.NotEqual(t, oldP.ID, newP.ID)
	require.NotEqual(t, oldP.CNID, newP.CNID)
	var other vda.Cntlr
	for _, c := range da.Cntlrs {
		if c.ID != newP.ID && c.ID != oldP.ID {
			other = c
		}
	}
	live := []*agenttest.Fake{tc.dns[0], tc.dns[1], tc.agent(newP.CNName), tc.agent(other.CNName)}
	eventually(t, func() bool { return tc.allConverged(live...) }, wait, 5*time.Millisecond)

	newHost := nvmeof.PrimaryHostNQN(newP.ID, uint64(da.Epoch)).String()
	promoted := tc.agent(newP.CNName).FirstSeq(func(r *agentpb.SyncRequest) bool { return isPrimaryFor(r, newP.ID) })
	repointed := tc.agent(other.CNName).FirstSeq(func(r *agentpb.SyncRequest) bool { return secondaryOf(r, other.ID, newP.ID) })
	for _, dn := range tc.dns {
		fenced := dn.FirstSeq(func(r *agentpb.SyncRequest) bool { return hostNQNOf(r, da.ID) == newHost })
		require.Positive(t, fenced)
		require.Less(t, fenced, promoted, "the DNs are fenced before the new primary is built")
	}
	require.Less(t, promoted, repointed, "the other secondary is re-pointed after the new primary")

	eventually(t, func() bool {
		st := tc.da("da0").Status
		return st.Health == vda.HealthDegraded && st.Part(oldP.ID).Health == vda.HealthFailed &&
			st.Part(newP.ID).Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
	eventually(t, func() bool { return nodeHealth(t, s, oldCN) == vda.HealthFailed }, wait, 5*time.Millisecond)
	exp, err := tc.c.GetExporter(context.Background(), "da0", "exp0")
	require.NoError(t, err)
	oldPort, _ := portOf(&exp, oldP.Idx)
	require.Equal(t, vda.HealthFailed, exp.Status.Part(oldPort.ID).Health)

	// The old primary returns (restarted): it is demoted to a secondary of
	// the new primary, never made primary again by a stale state.
	oldCN.Restart("i1")
	eventually(t, func() bool { return tc.converged(oldCN) }, wait, 5*time.Millisecond)
	require.True(t, secondaryOf(oldCN.LastApplied(), oldP.ID, newP.ID))
	eventually(t, func() bool {
		return tc.da("da0").Status.Health == vda.HealthHealthy && nodeHealth(t, s, oldCN) == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
	require.EqualValues(t, 2, tc.da("da0").Epoch, "a returning node causes no further failover")
}

// The statuses a failed controller node leaves behind (its controllers and
// ports failed, one write per array) are written after the failover's
// pushes, not beside its commit: every write that marks the old primary
// failed finds the new primary already pushed. The node's own health is
// written at once.
func TestFailedControllerMarksFollowTheFailover(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	before := tc.createDA("da0", 2, 2)
	oldP, _ := before.Primary()
	var newP vda.Cntlr
	for _, c := range before.Cntlrs {
		if c.ID != oldP.ID {
			newP = c
		}
	}
	daStatus := vda.KeyStatus(vda.KeyDA("da0"))
	var marks, early atomic.Int64
	counted := &countingStore{Store: s, onTxn: func(tx store.Txn) {
		for _, op := range tx.Ops {
			var st vda.Status
			if op.Key != daStatus || json.Unmarshal(op.Value, &st) != nil || st.Part(oldP.ID).Health != vda.HealthFailed {
				continue
			}
			marks.Add(1)
			pushed := tc.agent(newP.CNName).FirstSeq(func(r *agentpb.SyncRequest) bool { return isPrimaryFor(r, newP.ID) })
			if pushed == 0 {
				early.Add(1)
			}
		}
	}}
	startMonitor(t, testConfig(counted, "m0"))
	eventually(t, func() bool {
		return tc.allConverged(tc.all()...) && tc.da("da0").Status.Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
	oldCN := tc.agent(oldP.CNName)
	oldCN.Stop()
	eventually(t, func() bool { return nodeHealth(t, s, oldCN) == vda.HealthFailed }, wait, 5*time.Millisecond)
	eventually(t, func() bool {
		st := tc.da("da0").Status
		return st.Part(oldP.ID).Health == vda.HealthFailed && st.Part(newP.ID).Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
	require.EqualValues(t, 2, tc.da("da0").Epoch)
	require.Positive(t, marks.Load(), "the old primary was marked failed")
	require.Zero(t, early.Load(), "the old primary was marked failed before the new primary was pushed")
}

// With no healthy secondary the DA says so; when a secondary comes back,
// the DA waits for it to be stable for HoldDown (it failed just before),
// and says so, then fails over.
func TestFailoverWithoutHealthySecondary(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 2)
	before := tc.createDA("da0", 1, 2)
	cfg := testConfig(s, "m0")
	cfg.Failover.HoldDown = 4 * time.Second
	// The monitor's clock stands still: no hold-down ever ends, however
	// slow the machine, so a move proves the array did not wait for one.
	frozen := time.Now()
	cfg.Now = func() time.Time { return frozen }
	m, _ := startMonitor(t, cfg)
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	p, _ := before.Primary()
	var sec vda.Cntlr
	for _, c := range before.Cntlrs {
		if !c.Primary {
			sec = c
		}
	}
	tc.agent(sec.CNName).Stop()
	eventually(t, func() bool { return nodeHealth(t, s, tc.agent(sec.CNName)) == vda.HealthFailed }, wait, 5*time.Millisecond)
	eventually(t, func() bool { return tc.da("da0").Status.Health == vda.HealthDegraded }, wait, 5*time.Millisecond)
	tc.agent(p.CNName).Stop()
	eventually(t, func() bool {
		st := tc.da("da0").Status
		return st.Health == vda.HealthFailed && strings.Contains(st.ErrorMsg, "no healthy secondary")
	}, wait, 5*time.Millisecond)
	require.EqualValues(t, 1, tc.da("da0").Epoch, "nothing to promote")

	// The secondary's node comes back: it is held down, but the primary's
	// node is dead (refused), so the array moves at once rather than wait.
	tc.agent(sec.CNName).Restart("i1")
	eventually(t, func() bool { return tc.da("da0").PrimaryCntlrID == sec.ID }, wait, 5*time.Millisecond)
	st := m.Stats()
	require.Contains(t, st.HeldDown, sec.CNName, "did not wait out the hold-down")
	require.Equal(t, 1, st.Failovers)
	require.Zero(t, st.Waiting)
	require.Equal(t, 2, st.NodesFailedRefused)
	require.Zero(t, st.NodesFailedSilent)
	eventually(t, func() bool { return tc.converged(tc.agent(sec.CNName)) && tc.converged(tc.dns[0]) }, wait, 5*time.Millisecond)
	eventually(t, func() bool {
		st := tc.da("da0").Status
		return st.Health == vda.HealthDegraded && !strings.Contains(st.ErrorMsg, "no healthy secondary")
	}, wait, 5*time.Millisecond)
}

// A failed DN leaves its DAs degraded (no failover: the controllers are
// fine); when it returns it is re-synced and the DAs recover.
func TestFailedDiskNodeDegradesThenRecovers(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	da := tc.createDA("da0", 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool { return tc.da("da0").Status.Health == vda.HealthHealthy }, wait, 5*time.Millisecond)
	dn := tc.agent(da.VDs[1].DNName)
	dn.Stop()
	eventually(t, func() bool {
		st := tc.da("da0").Status
		return st.Health == vda.HealthDegraded && st.Part(da.VDs[1].ID).Health == vda.HealthFailed
	}, wait, 5*time.Millisecond)
	require.Contains(t, tc.da("da0").Status.ErrorMsg, "disk node")
	eventually(t, func() bool {
		pd, err := tc.c.GetPhysicalDisk(context.Background(), da.VDs[1].DNName, da.VDs[1].PDName)
		return err == nil && pd.Status.Health == vda.HealthFailed
	}, wait, 5*time.Millisecond)
	require.EqualValues(t, 1, tc.da("da0").Epoch)

	n := len(dn.Records())
	dn.Restart("i1")
	eventually(t, func() bool { return len(dn.Records()) > n && tc.converged(dn) }, wait, 5*time.Millisecond)
	eventually(t, func() bool { return tc.da("da0").Status.Health == vda.HealthHealthy }, wait, 5*time.Millisecond)
}

// isFailoverCommit: a transaction guarded by a monitor's member key.
func isFailoverCommit(t store.Txn) bool {
	for _, c := range t.Conds {
		if strings.HasPrefix(c.Key, MembersPrefix) {
			return len(t.Ops) > 0
		}
	}
	return false
}

// txnCounter counts the transactions that move DA primaries.
type txnCounter struct {
	store.Store
	moves, conflicts atomic.Int64
}

func (c *txnCounter) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	res, err := c.Store.Txn(ctx, t)
	if isFailoverCommit(t) {
		c.moves.Add(1)
		if err == nil && !res.Succeeded {
			c.conflicts.Add(1)
		}
	}
	return res, err
}

// Many DAs on one failed CN move in few transactions (up to MaxTxnOps DAs
// each), spread over the survivors.
func TestFailoverManyDAs(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 3)
	const n = 480 // about 160 primaries per CN: more than one batch (MaxTxnOps)
	for i := 0; i < n; i++ {
		tc.createDA(fmt.Sprintf("da%03d", i), 1, 3)
	}
	das, _, err := tc.c.ListDiskArrays(context.Background(), vda.Page{Limit: vda.MaxPageSize})
	require.NoError(t, err)
	require.Len(t, das, n)
	count := map[string]int{}
	for _, da := range das {
		p, _ := da.Primary()
		count[p.CNName]++
	}
	victim := tc.cns[0]
	for _, a := range tc.cns {
		if count[a.Addr] > count[victim.Addr] {
			victim = a
		}
	}
	require.Greater(t, count[victim.Addr], store.MaxTxnOps, "enough DAs for several batches")
	counter := &txnCounter{Store: s}
	startMonitor(t, testConfig(counter, "m0"))
	eventually(t, func() bool {
		das, _, err := tc.c.ListDiskArrays(context.Background(), vda.Page{Limit: vda.MaxPageSize})
		require.NoError(t, err)
		for _, da := range das {
			if !da.Initialized {
				return false
			}
		}
		return tc.allConverged(tc.all()...)
	}, 2*time.Minute, 10*time.Millisecond)
	victim.Stop()
	eventually(t, func() bool {
		das, _, err := tc.c.ListDiskArrays(context.Background(), vda.Page{Limit: vda.MaxPageSize})
		require.NoError(t, err)
		for _, da := range das {
			if p, _ := da.Primary(); p.CNName == victim.Addr {
				return false
			}
		}
		return true
	}, 2*time.Minute, 10*time.Millisecond)
	batches := (count[victim.Addr] + store.MaxTxnOps - 2) / (store.MaxTxnOps - 1)
	require.LessOrEqual(t, counter.moves.Load(), int64(batches)+counter.conflicts.Load(), "batched commits")
	das, _, err = tc.c.ListDiskArrays(context.Background(), vda.Page{Limit: vda.MaxPageSize})
	require.NoError(t, err)
	after := map[string]int{}
	for _, da := range das {
		p, _ := da.Primary()
		after[p.CNName]++
	}
	for _, a := range tc.cns {
		if a != victim {
			require.Greater(t, after[a.Addr], count[a.Addr]+count[victim.Addr]/4, "load spread over the survivors")
		}
	}
	var live []*agenttest.Fake
	for _, a := range tc.all() {
		if a != victim {
			live = append(live, a)
		}
	}
	eventually(t, func() bool { return tc.allConverged(live...) }, 2*time.Minute, 10*time.Millisecond)
}

// freezer blocks every agent call while frozen: a monitor that hangs (or
// died) right after its failover commit.
type freezer struct{ frozen atomic.Bool }

func (f *freezer) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if f.frozen.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	return inv(ctx, method, req, reply, cc, opts...)
}

// freezeOnMove freezes the monitor's agent calls, and then its whole store
// access, as soon as it committed a failover.
type freezeOnMove struct {
	*crashable
	f *freezer
}

func (c freezeOnMove) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	res, err := c.crashable.Txn(ctx, t)
	if err == nil && res.Succeeded && isFailoverCommit(t) {
		c.f.frozen.Store(true)
		c.crashable.down.Store(true)
	}
	return res, err
}

// A monitor that dies right after committing a failover, before pushing
// anything, leaves nothing another monitor cannot finish: the next owner
// pushes the committed state (fence, promotion, re-pointing).
func TestMonitorDiesMidFailover(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 3)
	before := tc.createDA("da0", 2, 3)
	f := &freezer{}
	cfgA := testConfig(freezeOnMove{crashable: &crashable{Store: s}, f: f}, "a")
	cfgA.DialOptions = append(cfgA.DialOptions, grpc.WithChainUnaryInterceptor(f.intercept))
	_, stopA := startMonitor(t, cfgA)
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	oldP, _ := before.Primary()
	tc.agent(oldP.CNName).Stop()
	eventually(t, func() bool { return tc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	require.True(t, f.frozen.Load())
	stopA() // crashed: its lease expires

	da := tc.da("da0")
	newP, _ := da.Primary()
	newHost := nvmeof.PrimaryHostNQN(newP.ID, uint64(da.Epoch)).String()
	for _, dn := range tc.dns {
		require.Zero(t, dn.FirstSeq(func(r *agentpb.SyncRequest) bool { return hostNQNOf(r, da.ID) == newHost }),
			"the dead monitor pushed nothing after its commit")
	}
	startMonitor(t, testConfig(s, "b"))
	var live []*agenttest.Fake
	for _, a := range tc.all() {
		if a.Addr != oldP.CNName {
			live = append(live, a)
		}
	}
	eventually(t, func() bool { return tc.allConverged(live...) }, wait, 5*time.Millisecond)
	require.True(t, isPrimaryFor(tc.agent(newP.CNName).LastApplied(), newP.ID))
	require.EqualValues(t, 2, tc.da("da0").Epoch, "the second monitor does not fail over again")
}

// A monitor that dies before committing: the next owner detects the
// failed CN itself and fails over.
func TestMonitorDiesBeforeFailoverCommit(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 2)
	before := tc.createDA("da0", 1, 2)
	crashA := &crashable{Store: s}
	_, stopA := startMonitor(t, testConfig(crashA, "a"))
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	crashA.down.Store(true)
	stopA()
	oldP, _ := before.Primary()
	tc.agent(oldP.CNName).Stop()
	startMonitor(t, testConfig(s, "b"))
	eventually(t, func() bool { return tc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	eventually(t, func() bool { return tc.converged(tc.dns[0]) }, wait, 5*time.Millisecond)
	after := tc.da("da0")
	require.Equal(t, nvmeof.PrimaryHostNQN(after.PrimaryCntlrID, uint64(after.Epoch)).String(), hostNQNOf(tc.dns[0].LastApplied(), before.ID))
}

// A planned switchover through the API is carried out like a failover:
// DNs first, then the new primary, then the old one demoted.
func TestSwitchoverIsPushedFenceFirst(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	before := tc.createDA("da0", 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool {
		return tc.da("da0").Initialized && tc.allConverged(tc.all()...)
	}, wait, 5*time.Millisecond)
	oldP, _ := before.Primary()
	var target vda.Cntlr
	for _, c := range before.Cntlrs {
		if !c.Primary {
			target = c
		}
	}
	mark := agenttest.LastSeq()
	_, err := tc.c.SwitchoverDiskArray(context.Background(), "da0", target.Idx)
	require.NoError(t, err)
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	newHost := nvmeof.PrimaryHostNQN(target.ID, uint64(tc.da("da0").Epoch)).String()
	first := func(a *agenttest.Fake, fn func(*agentpb.SyncRequest) bool) int64 {
		for _, r := range after(a.Records(), mark) {
			if fn(r.Req) {
				return r.Seq
			}
		}
		return 0
	}
	promoted := first(tc.agent(target.CNName), func(r *agentpb.SyncRequest) bool { return isPrimaryFor(r, target.ID) })
	demoted := first(tc.agent(oldP.CNName), func(r *agentpb.SyncRequest) bool { return secondaryOf(r, oldP.ID, target.ID) })
	for _, dn := range tc.dns {
		fenced := first(dn, func(r *agentpb.SyncRequest) bool { return hostNQNOf(r, before.ID) == newHost })
		require.Positive(t, fenced)
		require.Less(t, fenced, promoted)
	}
	require.Less(t, promoted, demoted)
	eventually(t, func() bool { return tc.da("da0").Status.Health == vda.HealthHealthy }, wait, 5*time.Millisecond)
}

// A node busy with a Sync answers Health late: that is not evidence while
// the Sync is younger than BusyGrace (no failover onto or away from a busy
// node), but it is once the grace is over (and then fails the node after
// SlowTimeout without an answer).
func TestBusyNodeIsNotFailedWithinGrace(t *testing.T) {
	for name, grace := range map[string]time.Duration{"within grace": time.Hour, "grace over": time.Nanosecond} {
		t.Run(name, func(t *testing.T) {
			s := newMemStore(t)
			tc := newTestCluster(t, s, 1, 2)
			tc.createDA("da0", 1, 2)
			cfg := testConfig(s, "m0")
			// Timeouts fail a node after 500 ms without an answer.
			cfg.Failover.Window, cfg.Failover.SlowTimeout = 200*time.Millisecond, 500*time.Millisecond
			cfg.HealthTimeout, cfg.BusyGrace = 20*time.Millisecond, grace
			startMonitor(t, cfg)
			eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
			p, _ := tc.da("da0").Primary()
			busy := tc.agent(p.CNName)
			busy.SetHang()
			pushes := len(busy.Records())
			_, err := tc.c.ModifyExporter(context.Background(), "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: []string{"nqn.2016-06.io.spdk:host9"}})
			require.NoError(t, err)
			eventually(t, func() bool { return len(busy.Records()) > pushes }, wait, time.Millisecond, "a Sync in flight")
			busy.SetSlowHealth(true)
			n := busy.HealthCalls()
			if grace == time.Hour {
				// Many probes time out during the hung Sync; none is a miss.
				eventually(t, func() bool { return busy.HealthCalls() > n+10 }, wait, 5*time.Millisecond)
				require.NotEqual(t, vda.HealthFailed, nodeHealth(t, s, busy))
				require.EqualValues(t, 1, tc.da("da0").Epoch)
				return
			}
			eventually(t, func() bool { return nodeHealth(t, s, busy) == vda.HealthFailed }, wait, 5*time.Millisecond)
			eventually(t, func() bool { return tc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
		})
	}
}

// A primary deposed by a failover that reports its lvstore late does not
// mark the DA initialized: only the current primary at its epoch does.
func TestStaleInitializedReportIsIgnored(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 2)
	tc.createDA("da0", 1, 2)
	m, err := New(testConfig(s, "m0"))
	require.NoError(t, err)
	ctx := context.Background()
	old, err := LoadSnapshot(ctx, s)
	require.NoError(t, err)
	movePrimaryTo(t, s, "da0", 1)
	require.NoError(t, m.markInitialized(ctx, old, []string{"da0"}))
	require.False(t, tc.da("da0").Initialized, "a report from the deposed primary")
	cur, err := LoadSnapshot(ctx, s)
	require.NoError(t, err)
	require.NoError(t, m.markInitialized(ctx, cur, []string{"da0"}))
	require.True(t, tc.da("da0").Initialized)
}

// A failover does not wait for a push of an older state that is still in
// flight to a DN: it is cancelled and the fence is pushed at once.
func TestFailoverPreemptsStalePush(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 2)
	before := tc.createDA("da0", 1, 2)
	cfg := testConfig(s, "m0")
	cfg.SyncTimeout, cfg.PhaseTimeout = time.Hour, time.Hour
	startMonitor(t, cfg)
	eventually(t, func() bool { return tc.da("da0").Initialized && tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	dn := tc.dns[0]
	dn.SetHang() // the next push to the DN hangs until cancelled
	pushes := len(dn.Records())
	// A new DA gives the DN a new state to push.
	_, err := tc.c.CreateDiskArray(context.Background(), vda.DiskArraySpec{Name: "da1", CntlrCount: 2, SizeBytes: 16 << 20,
		Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}})
	require.NoError(t, err)
	eventually(t, func() bool { return len(dn.Records()) > pushes }, wait, time.Millisecond, "a push hangs")
	dn.StopHanging() // later pushes answer (the hung one keeps hanging)

	p, _ := before.Primary()
	tc.agent(p.CNName).Stop()
	eventually(t, func() bool { return tc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	newHost := nvmeof.PrimaryHostNQN(tc.da("da0").PrimaryCntlrID, 2).String()
	eventually(t, func() bool {
		a := dn.LastApplied()
		return a != nil && hostNQNOf(a, before.ID) == newHost
	}, wait, 5*time.Millisecond, "the fence waited for the stale push")
}
