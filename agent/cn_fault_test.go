package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

// converge syncs controller i until all of its objects are OK (at most
// tries times) and fails the test otherwise.
func (cl *cnCluster) converge(i, tries int) {
	cl.t.Helper()
	var last []*agentpb.ObjectStatus
	for range tries {
		last = cl.cns[i].syncCN(cl.cnState(i))
		ok := true
		for _, o := range last {
			ok = ok && o.GetOk()
		}
		if ok {
			return
		}
	}
	require.Failf(cl.t, "no convergence", "controller %d after %d syncs: %v", i, tries, last)
}

// buildThrough brings the array up with every controller converging
// within a few syncs despite faults, as the monitor's retries would.
func (cl *cnCluster) buildThrough() {
	cl.t.Helper()
	cl.syncDNs()
	p := cl.cns[cl.primary]
	for range 4 {
		st := cnStatus(cl.t, p.syncCN(cl.cnState(cl.primary)), agentpb.Kind_KIND_CNTLR, cl.cntlrs[cl.primary])
		if st.GetDaInitialized() {
			cl.initialized = true
			break
		}
	}
	require.True(cl.t, cl.initialized, "the primary never created the lvstore")
	cl.converge(cl.primary, 4)
	for i := range cl.cns {
		if i != cl.primary {
			cl.converge(i, 4)
		}
	}
}

// checkConverged requires exactly the wanted objects on every controller
// (no orphans, nothing missing) and a read-only resync.
func (cl *cnCluster) checkConverged() {
	cl.t.Helper()
	require.Equal(cl.t, cl.wantPrimaryObjects(true), cl.cns[cl.primary].cnOwned())
	for i, cn := range cl.cns {
		if i != cl.primary {
			require.Equal(cl.t, cl.wantSecondaryObjects(), cn.cnOwned(), "controller %d", i)
		}
		cn.fake.ResetCounts()
		cn.syncCNOK(cl.cnState(i))
		require.Empty(cl.t, cn.mutations(), "controller %d", i)
	}
}

var cnFaultMethods = []string{
	"nvmf_create_transport", "bdev_nvme_attach_controller", "bdev_raid_create", "bdev_examine",
	"bdev_lvol_create_lvstore", "bdev_lvol_create", "nvmf_create_subsystem", "nvmf_subsystem_add_ns",
	"nvmf_subsystem_add_listener", "nvmf_subsystem_add_host", "nvmf_get_subsystems", "bdev_get_bdevs",
}

// Each step of the build fails once, on both controllers: as an error, or
// with its effect done and its reply lost (the connection drops). The
// next syncs converge to exactly the recipe, with no orphans.
func TestCNConvergesAfterFailedSteps(t *testing.T) {
	faults := map[string]spdktest.Fault{
		"error":      {Error: &spdktest.Error{Code: -12, Message: "Cannot allocate memory"}, Times: 1},
		"reply lost": {DropReply: true, Times: 1},
	}
	for _, kind := range []string{"error", "reply lost"} {
		for _, m := range cnFaultMethods {
			t.Run(kind+" "+m, func(t *testing.T) {
				cl := newCNCluster(t, 2, 2, 2)
				for _, cn := range cl.cns {
					cn.fake.Inject(m, faults[kind])
				}
				cl.buildThrough()
				require.Positive(t, cl.cns[0].fake.RPCCount(m)+cl.cns[1].fake.RPCCount(m), "the fault was hit")
				cl.checkConverged()
			})
		}
	}
}

// spdk_tgt dies in the middle of a sync (here while the primary examines
// its raid); it comes back empty. The next syncs rebuild everything and
// find the array's lvstore again.
func TestCNConvergesAfterSPDKRestartMidSync(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	p := cl.cns[0]
	lvs := p.lvstore(nvmeof.DALvstoreName(cl.daID))
	p.fake.ResetCounts()
	require.NoError(t, p.c.BdevRaidDelete(context.Background(), spdk.NameParams{Name: nvmeof.RaidName(cl.daID)}))
	// A long delay rather than a hang: if the restarted instance is the one
	// to take the fault (the restart races with it), it only slows it.
	p.fake.Inject("bdev_examine", spdktest.Fault{Latency: 2 * time.Second, Times: 1})
	done := make(chan []*agentpb.ObjectStatus)
	go func() { done <- p.syncCN(cl.cnState(0)) }()
	require.Eventually(t, func() bool { return p.fake.RPCCount("bdev_examine") > 0 }, 10*time.Second, time.Millisecond)
	p.restart()
	out := <-done
	require.False(t, cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0]).GetOk())

	cl.converge(0, 3)
	cl.converge(1, 3)
	require.Equal(t, lvs.UUID, p.lvstore(lvs.Name).UUID)
	require.Zero(t, p.fake.RPCCount("bdev_lvol_create_lvstore"))
	cl.checkConverged()
	cnRead(t, cl.host(1), 4096) // the secondary reaches the rebuilt primary
}

// A hung SPDK bounds the sync by its context; SPDK is then restarted (a
// stuck reactor answers nothing) and the next syncs converge.
func TestCNHungSPDKBoundsTheSync(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.syncDNs()
	p := cl.cns[0]
	p.fake.Inject("bdev_raid_create", spdktest.Fault{Hang: true, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out := p.cn.sync(ctx, cl.cnState(0))
	st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
	require.False(t, st.GetOk())
	require.Contains(t, st.GetError(), context.DeadlineExceeded.Error())
	p.restart()
	cl.buildThrough()
	cl.checkConverged()
}

// A slow SPDK finishes a step after the sync gave up on it: the effect
// lands late and the next sync takes it as found.
func TestCNLateEffectsAreAdopted(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.syncDNs()
	p := cl.cns[0]
	p.fake.Inject("bdev_lvol_create_lvstore", spdktest.Fault{Latency: 500 * time.Millisecond, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st := cnStatus(t, p.cn.sync(ctx, cl.cnState(0)), agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
	require.False(t, st.GetOk())
	require.Eventually(t, func() bool { return p.lvstore(nvmeof.DALvstoreName(cl.daID)) != nil }, 10*time.Second, 5*time.Millisecond)
	cl.buildThrough()
	require.Equal(t, 1, p.fake.RPCCount("bdev_lvol_create_lvstore"), "found, not created twice")
	cl.checkConverged()
}

// cnMerge is the CN state of one node hosting a controller of each cluster.
func cnMerge(sts ...*agentpb.CnState) *agentpb.CnState {
	out := &agentpb.CnState{}
	for _, s := range sts {
		out.Cntlrs = append(out.Cntlrs, s.GetCntlrs()...)
	}
	return out
}

// Arrays on one CN are independent: one whose disk node is gone reports
// its error, the others build and stay untouched.
func TestCNOneFailingArrayDoesNotBlockOthers(t *testing.T) {
	const n = 4
	cls := make([]*cnCluster, n)
	cn := newCNEnv(t)
	for i := range cls {
		cls[i] = newCNCluster(t, 1, 2, 0)
		cls[i].cns, cls[i].cntlrs, cls[i].ports = []*cnNodeEnv{cn}, []string{nvmeof.NewID()}, []string{nvmeof.NewID()}
		nqn, err := nvmeof.ExpNQN(fmt.Sprintf("da%d", i), "exp0")
		require.NoError(t, err)
		cls[i].nqn = nqn
		cls[i].syncDNs()
	}
	cls[0].dns[0].fake.Crash()
	state := func() *agentpb.CnState {
		var sts []*agentpb.CnState
		for _, cl := range cls {
			sts = append(sts, cl.cnState(0))
		}
		return cnMerge(sts...)
	}
	out := cn.syncCN(state())
	require.False(t, cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cls[0].cntlrs[0]).GetOk())
	for _, cl := range cls[1:] {
		st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
		require.True(t, st.GetOk(), st.GetError())
		require.True(t, st.GetDaInitialized())
		cl.initialized = true
	}
	out = cn.syncCN(state())
	for _, cl := range cls[1:] {
		require.True(t, cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[0]).GetOk())
		require.NotNil(t, cn.subsystem(cl.nqn))
	}
	require.Nil(t, cn.subsystem(cls[0].nqn))
}
