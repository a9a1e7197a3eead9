package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

// rpcCounts returns the requests fake got since its last ResetCounts, by
// method, and fails t if any of them changes SPDK.
func rpcCounts(t *testing.T, fake interface {
	CalledMethods() []string
	RPCCount(string) int
}) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range fake.CalledMethods() {
		require.True(t, spdk.IsReadOnly(m), "a no-op resync called %s", m)
		out[m] = fake.RPCCount(m)
	}
	return out
}

// A no-op resync of a disk node lists each kind of object once, whatever
// the number of PDs and VDs (issue 18).
func TestDNResyncReadsAFixedNumber(t *testing.T) {
	resync := func(npd, nvd int) map[string]int {
		e := newDNEnv(t)
		st := dnState(npd, nvd, nvmeof.NewID(), nvmeof.NewID(), 1)
		e.syncOK(st)
		e.fake.ResetCounts()
		e.syncOK(st)
		return rpcCounts(t, e.fake)
	}
	small := resync(1, 2)
	require.Equal(t, small, resync(4, 10), "4 PDs and 40 VDs against 1 PD and 2 VDs")
}

// A no-op resync of a controller node reads a fixed number of times,
// whatever its number of arrays: the listings, and the listeners of at
// most cnANARechecks exporters (issue 18).
func TestCNResyncReadsAFixedNumber(t *testing.T) {
	resync := func(das int) map[string]int {
		bn := newCNBench(t, das)
		cn := bn.newCN(t, false)
		bn.requireOK(t, cn.syncCN(bn.state()))
		cn.fake.ResetCounts()
		bn.requireOK(t, cn.syncCN(bn.state()))
		return rpcCounts(t, cn.fake)
	}
	small := resync(cnANARechecks)
	require.Equal(t, cnANARechecks, small["nvmf_subsystem_get_listeners"])
	require.Equal(t, small, resync(3*cnANARechecks))
}

// ANA states changed behind the agent's back on many exporters are all
// repaired, cnANARechecks per sync, read longest ago first.
func TestCNRepairsANADriftOnEveryExporter(t *testing.T) {
	const das = 3 * cnANARechecks
	bn := newCNBench(t, das)
	cn := bn.newCN(t, false)
	bn.requireOK(t, cn.syncCN(bn.state()))
	ctx := context.Background()
	la := spdk.ListenAddress{TRType: "tcp", TRAddr: cn.listener.TrAddr, AdrFam: "ipv4", TRSvcID: cn.listener.TrSvcID}
	nqns := make([]nvmeof.NQN, 0, das)
	for _, c := range bn.cntlrs {
		nqn := nvmeof.NQN(c.GetExps()[0].GetNqn())
		nqns = append(nqns, nqn)
		require.NoError(t, cn.c.NvmfSubsystemListenerSetANAState(ctx, spdk.NvmfSubsystemListenerSetANAStateParams{
			NQN: string(nqn), ListenAddress: la, ANAState: spdk.ANAInaccessible}))
	}
	optimized := func() int {
		n := 0
		for _, nqn := range nqns {
			if cn.anaState(nqn) == spdk.ANAOptimized {
				n++
			}
		}
		return n
	}
	for i := 1; i <= das/cnANARechecks; i++ {
		bn.requireOK(t, cn.syncCN(bn.state()))
		require.Equal(t, i*cnANARechecks, optimized(), "after %d syncs", i)
	}
	cn.fake.ResetCounts()
	bn.requireOK(t, cn.syncCN(bn.state()))
	require.Empty(t, cn.mutations(), "repaired: the next sync only reads")
}

// A controller node built from empty (a restart) with initialized arrays
// whose examine is slow asks for each array's lvol once, in a
// bdev_get_bdevs that waits for it to register, and never waits for every
// examine on the node.
func TestCNBuildWaitsForEachLvolOnce(t *testing.T) {
	const das = 6
	// Every lvol shows up: the wait ends with it, so its limit only has
	// to outlast a busy machine (TestMain's 1 s did not, and a missed
	// wait looks the lvol up once more).
	w := cnLvolWait
	t.Cleanup(func() { cnLvolWait = w })
	cnLvolWait = time.Minute
	bn := newCNBench(t, das)
	cn := newCNEnv(t, spdktest.WithExamineDelay(100*time.Millisecond))
	bn.requireOK(t, cn.syncCN(bn.state()))
	require.Zero(t, cn.fake.RPCCount("bdev_wait_for_examine"))
	// The sync's listing, then per array its lvol, which also shows that
	// the raid has its bdev (no look at the raid of its own).
	require.Equal(t, 1+das, cn.fake.RPCCount("bdev_get_bdevs"))
	require.Zero(t, cn.fake.RPCCount("bdev_lvol_create_lvstore"))
}

// An initialized array's raid made while a member is missing (SPDK answers
// bdev_raid_create with true and leaves the raid configuring, without a
// bdev) is reported as that once its lvol does not come, not as a slow
// examine (no miss recorded), and nothing is made on it.
func TestCNRaidWithoutBdevIsReportedAfterItsLvolWait(t *testing.T) {
	e, c := cnRaidWithoutMembers(t, true)
	require.False(t, e.cn.lvolMisses.missed(c), "not recorded as an lvol that examine did not bring")
	require.Zero(t, e.fake.RPCCount("bdev_lvol_create_lvstore"))
	require.Zero(t, e.fake.RPCCount("bdev_wait_for_examine"))
}

// New arrays are built without looking up what cannot be there yet: the
// raid's bdev is shown by the lvstore made on it, and that new lvstore
// holds no lvol. The sync's listing is its only bdev_get_bdevs.
func TestCNNewArraysSkipLookups(t *testing.T) {
	const das = 3
	bn := newCNBenchSpecs(t, das)
	cn := newCNEnv(t)
	for _, o := range cn.syncCN(bn.state()) {
		if o.GetKind() == agentpb.Kind_KIND_CNTLR {
			require.True(t, o.GetOk() && o.GetDaInitialized(), "%s: %s", o.GetId(), o.GetError())
		}
	}
	require.Equal(t, 1, cn.fake.RPCCount("bdev_get_bdevs"))
	require.Equal(t, das, cn.fake.RPCCount("bdev_lvol_create_lvstore"))
	require.Equal(t, das, cn.fake.RPCCount("bdev_lvol_create"))
}

// A new array's raid made while a member is missing (SPDK answers
// bdev_raid_create with true and leaves it configuring, without a bdev)
// is reported as that when its lvstore cannot be created on it.
func TestCNNewRaidWithoutBdevIsReported(t *testing.T) {
	e, _ := cnRaidWithoutMembers(t, false)
	lvss, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{})
	require.NoError(t, err)
	require.Empty(t, lvss)
}

// cnRaidWithoutMembers makes a primary's raid whose VDs were never
// attached (SPDK accepts it) and requires the lvstore step to report the
// raid's missing bdev, for an initialized array or a new one.
func cnRaidWithoutMembers(t *testing.T, initDone bool) (*cnNodeEnv, *cnCntlr) {
	t.Helper()
	e := newCNEnv(t)
	ctx := context.Background()
	snap, err := listCN(ctx, e.c)
	require.NoError(t, err)
	c := &cnCntlr{id: nvmeof.NewID(), daID: nvmeof.NewID(), primary: true, epoch: 1, stripKB: 64, initDone: initDone,
		cluster: 1 << 20, vds: []cnVD{{id: nvmeof.NewID()}, {id: nvmeof.NewID()}}}
	task := newCNTask(e.cn, c, snap, cnClaims{})
	require.NoError(t, task.createRaid(ctx, false), "SPDK accepts a raid whose members are missing")
	err = task.ensureLvstore(ctx, true)
	require.ErrorIs(t, err, errCNState)
	require.ErrorContains(t, err, "has no bdev (a member is missing)")
	return e, c
}

// Arrays never marked initialized whose lvstores exist (their CN made
// them, then died before the store recorded it) find them, however slow
// examine is: no lvstore is created while examine may still find one.
func TestCNUninitializedArraysWaitForSlowExamine(t *testing.T) {
	bn := newCNBench(t, 6)
	for _, c := range bn.cntlrs {
		c.Da.Initialized = false
	}
	cn := newCNEnv(t, spdktest.WithExamineDelay(300*time.Millisecond))
	out := cn.syncCN(bn.state())
	require.Zero(t, cn.fake.RPCCount("bdev_lvol_create_lvstore"))
	require.Zero(t, cn.fake.RPCCount("bdev_lvol_create"))
	for _, o := range out {
		if o.GetKind() == agentpb.Kind_KIND_CNTLR {
			require.True(t, o.GetOk() && o.GetDaInitialized(), "%s: %s", o.GetId(), o.GetError())
		}
	}
	lvss, err := cn.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{})
	require.NoError(t, err)
	require.Len(t, lvss, 6)
}

// A controller node built from empty whose lvstores load slower than
// cnLvolWait does not wait for every examine on the node
// (bdev_wait_for_examine): those arrays are reported not ready, and the
// next sync serves them. No lvstore or lvol is made for them.
func TestCNBuildDoesNotWaitOutSlowExamines(t *testing.T) {
	const das = 3
	bn := newCNBench(t, das)
	cn := newCNEnv(t, spdktest.WithExamineDelay(cnLvolWait+time.Second))
	out := cn.syncCN(bn.state())
	n := 0
	for _, o := range out {
		if o.GetKind() == agentpb.Kind_KIND_CNTLR {
			n++
			require.False(t, o.GetOk())
			require.Contains(t, o.GetError(), errCNNotReady.Error())
		}
	}
	require.Equal(t, das, n)
	require.Zero(t, cn.fake.RPCCount("bdev_wait_for_examine"))
	bn.requireOK(t, cn.syncCN(bn.state()))
	require.Zero(t, cn.fake.RPCCount("bdev_lvol_create_lvstore"))
	require.Zero(t, cn.fake.RPCCount("bdev_lvol_create"))
}
