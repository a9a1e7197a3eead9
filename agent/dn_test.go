package agent

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

func TestDNBuildsRecipeAndResyncOnlyReads(t *testing.T) {
	e := newDNEnv(t)
	pd, da, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	vd1, vd2 := nvmeof.NewID(), nvmeof.NewID()
	st := &agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(pd, 128<<20, vdSpec(vd1, da, cntlr, 1, 32), vdSpec(vd2, da, cntlr, 1, 16))}}
	out := e.syncOK(st)
	require.Len(t, out, 3)
	p := statusOf(t, out, agentpb.Kind_KIND_PD, pd)
	require.EqualValues(t, 31*4<<20, p.GetTotalBytes(), "a 128 MiB malloc holds 31 clusters")
	require.EqualValues(t, (31-8-4)*4<<20, p.GetFreeBytes())
	e.requireConverged(st)

	e.fake.ResetCounts()
	out = e.syncOK(st)
	require.Empty(t, e.mutations(), "a repeated sync only reads")
	require.NotZero(t, e.fake.TotalRPCs())
	require.EqualValues(t, (31-8-4)*4<<20, statusOf(t, out, agentpb.Kind_KIND_PD, pd).GetFreeBytes())
}

func TestDNTeardownInReverseOrder(t *testing.T) {
	e := newDNEnv(t)
	st := dnState(2, 2, nvmeof.NewID(), nvmeof.NewID(), 1)
	e.syncOK(st)
	e.rec.reset()
	require.Empty(t, e.sync(&agentpb.DnState{}), "nothing wanted, nothing failed")
	e.requireConverged(&agentpb.DnState{})
	bdevs, err := e.c.BdevGetBdevs(context.Background(), spdk.BdevGetBdevsParams{})
	require.NoError(t, err)
	require.Empty(t, bdevs)
	// Each object goes after everything on top of it (the recording's
	// teardown order: subsystem, lvols, lvstore, malloc).
	var order []string
	for _, m := range e.rec.mutations() {
		if len(order) == 0 || order[len(order)-1] != m.Method {
			order = append(order, m.Method)
		}
	}
	require.Equal(t, []string{"nvmf_delete_subsystem", "bdev_lvol_delete", "bdev_lvol_delete_lvstore", "bdev_malloc_delete"}, order)
}

func TestDNRemovesOnlyWhatIsNotWanted(t *testing.T) {
	e := newDNEnv(t)
	da1, da2, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	st := dnState(2, 2, da1, cntlr, 1)
	other := vdSpec(nvmeof.NewID(), da2, cntlr, 1, 8)
	st.Pds[0].Vds = append(st.Pds[0].Vds, other)
	e.syncOK(st)

	// DA 2 is deleted: its VD goes, the PD and the other VDs stay.
	smaller := proto.Clone(st).(*agentpb.DnState)
	smaller.Pds[0].Vds = smaller.Pds[0].Vds[:2]
	e.rec.reset()
	e.syncOK(smaller)
	e.requireConverged(smaller)
	var methods []string
	for _, m := range e.rec.mutations() {
		methods = append(methods, m.Method)
	}
	require.Equal(t, []string{"nvmf_delete_subsystem", "bdev_lvol_delete"}, methods)

	// The second PD is deleted.
	smaller.Pds = smaller.Pds[:1]
	e.syncOK(smaller)
	e.requireConverged(smaller)
}

func TestDNRepairsDrift(t *testing.T) {
	e := newDNEnv(t)
	cntlr := nvmeof.NewID()
	st := dnState(1, 3, nvmeof.NewID(), cntlr, 1)
	e.syncOK(st)
	ctx := context.Background()
	vds := st.Pds[0].Vds
	nqn0, nqn1, nqn2 := nvmeof.VDNQN(vds[0].Id), nvmeof.VDNQN(vds[1].Id), nvmeof.VDNQN(vds[2].Id)
	intruder := "nqn.2016-06.io.spdk:intruder"

	// Behind the agent's back: a subsystem deleted, a host added and the
	// wanted host removed, a foreign listener added, the namespace removed.
	require.NoError(t, e.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: string(nqn0)}))
	require.NoError(t, e.c.NvmfSubsystemAddHost(ctx, spdk.NvmfSubsystemHostParams{NQN: string(nqn1), Host: intruder}))
	require.NoError(t, e.c.NvmfSubsystemRemoveHost(ctx, spdk.NvmfSubsystemHostParams{NQN: string(nqn1), Host: string(nvmeof.PrimaryHostNQN(cntlr, 1))}))
	extra := testListener(t, e.fake)
	require.NoError(t, e.c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerParams{NQN: string(nqn2),
		ListenAddress: spdk.ListenAddress{TRType: "tcp", TRAddr: extra.TrAddr, TRSvcID: extra.TrSvcID, AdrFam: "ipv4"}}))
	require.NoError(t, e.c.NvmfSubsystemRemoveNs(ctx, spdk.NvmfSubsystemRemoveNsParams{NQN: string(nqn2), NSID: 1}))
	e.syncOK(st)
	e.requireConverged(st)

	// An lvol deleted (with its namespace) is made again.
	alias := nvmeof.LvolAlias(nvmeof.PDLvstoreName(st.Pds[0].Id), nvmeof.VDLvolName(vds[1].Id))
	require.NoError(t, e.c.NvmfSubsystemRemoveNs(ctx, spdk.NvmfSubsystemRemoveNsParams{NQN: string(nqn1), NSID: 1}))
	require.NoError(t, e.c.BdevLvolDelete(ctx, spdk.NameParams{Name: alias}))
	e.syncOK(st)
	e.requireConverged(st)

	// A subsystem opened to any host is re-created (switching
	// allow_any_host off would not drop the hosts it let in).
	require.NoError(t, e.c.NvmfSubsystemAllowAnyHost(ctx, spdk.NvmfSubsystemAllowAnyHostParams{NQN: string(nqn0), AllowAnyHost: true}))
	e.rec.reset()
	e.syncOK(st)
	e.requireConverged(st)
	require.Equal(t, "nvmf_delete_subsystem", e.rec.mutations()[0].Method)

	// A PD deleted behind the agent's back (malloc: its data is gone) is
	// rebuilt with its VDs.
	require.NoError(t, e.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: string(nqn0)}))
	require.NoError(t, e.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: string(nqn1)}))
	require.NoError(t, e.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: string(nqn2)}))
	require.NoError(t, e.c.BdevMallocDelete(ctx, spdk.NameParams{Name: nvmeof.PDBdevName(st.Pds[0].Id)}))
	e.syncOK(st)
	e.requireConverged(st)
}

func TestDNNeverTouchesForeignObjects(t *testing.T) {
	e := newDNEnv(t)
	ctx := context.Background()
	st := dnState(1, 1, nvmeof.NewID(), nvmeof.NewID(), 1)
	e.syncOK(st)
	pd := st.Pds[0].Id
	lvs := nvmeof.PDLvstoreName(pd)
	// Someone else's objects: a malloc, a subsystem, an lvol in our lvstore.
	_, err := e.c.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: "foreign", BlockSize: 4096, NumBlocks: 1024})
	require.NoError(t, err)
	require.NoError(t, e.c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemParams{NQN: "nqn.2016-06.io.spdk:foreign"}))
	_, err = e.c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{LvolName: "foreign", LvsName: lvs, SizeInMiB: new(uint64(4))})
	require.NoError(t, err)

	e.fake.ResetCounts()
	e.syncOK(st)
	require.Empty(t, e.mutations(), "foreign objects are not drift")

	// The PD goes: its VD is deleted, but the lvstore holding a foreign
	// lvol is kept (and so is its bdev), and the failure is reported.
	out := e.sync(&agentpb.DnState{})
	require.Len(t, out, 1)
	require.Equal(t, agentpb.Kind_KIND_PD, out[0].Kind)
	require.Equal(t, pd, out[0].Id)
	require.False(t, out[0].Ok)
	require.Contains(t, out[0].Error, "foreign")
	snap, err := e.dn.list(ctx)
	require.NoError(t, err)
	require.Contains(t, snap.lvstores, lvs)
	require.Contains(t, snap.lvols, nvmeof.LvolAlias(lvs, "foreign"))
	require.NotContains(t, snap.lvols, nvmeof.LvolAlias(lvs, nvmeof.VDLvolName(st.Pds[0].Vds[0].Id)))
	require.NotNil(t, snap.bdev("foreign"))
	require.NotNil(t, snap.bdev(nvmeof.PDBdevName(pd)))
	require.Contains(t, snap.subsystems, nvmeof.NQN("nqn.2016-06.io.spdk:foreign"))
}

func TestDNRefusesToReplaceMismatchedObjects(t *testing.T) {
	e := newDNEnv(t)
	ctx := context.Background()
	st := dnState(1, 1, nvmeof.NewID(), nvmeof.NewID(), 1)
	pd := st.Pds[0].Id
	// A bdev under the PD's name with another size: it may hold data.
	_, err := e.c.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: nvmeof.PDBdevName(pd), BlockSize: 4096, NumBlocks: 4096})
	require.NoError(t, err)
	e.fake.ResetCounts()
	out := e.sync(st)
	p := statusOf(t, out, agentpb.Kind_KIND_PD, pd)
	require.False(t, p.Ok)
	require.Contains(t, p.Error, "not touching it")
	v := statusOf(t, out, agentpb.Kind_KIND_VD, st.Pds[0].Vds[0].Id)
	require.False(t, v.Ok)
	require.Contains(t, v.Error, pd)
	require.Equal(t, []string{"nvmf_create_transport"}, e.mutations(), "nothing of the PD is touched")
}

func TestDNFenceRemovesOldHostFirst(t *testing.T) {
	e := newDNEnv(t)
	da, oldPrimary, newPrimary := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	st := dnState(1, 2, da, oldPrimary, 1)
	e.syncOK(st)

	failover := proto.Clone(st).(*agentpb.DnState)
	for _, vd := range failover.Pds[0].Vds {
		vd.HostNqn, vd.Epoch = string(nvmeof.PrimaryHostNQN(newPrimary, 2)), 2
	}
	e.rec.reset()
	e.syncOK(failover)
	e.requireConverged(failover)
	for _, vd := range failover.Pds[0].Vds {
		nqn := string(nvmeof.VDNQN(vd.Id))
		var calls []string
		for _, m := range e.rec.mutations() {
			if m.Params["nqn"] == nqn {
				calls = append(calls, m.Method+" "+m.Params["host"].(string))
			}
		}
		require.Equal(t, []string{
			"nvmf_subsystem_remove_host " + string(nvmeof.PrimaryHostNQN(oldPrimary, 1)),
			"nvmf_subsystem_add_host " + string(nvmeof.PrimaryHostNQN(newPrimary, 2)),
		}, calls)
	}
}

func TestDNWorksConcurrentlyWithABound(t *testing.T) {
	e := newDNEnv(t)
	e.dn.inflight = 4
	st := dnState(3, 6, nvmeof.NewID(), nvmeof.NewID(), 1)
	e.syncOK(st)
	peak := e.rec.peakInFlight()
	require.LessOrEqual(t, peak, 4, "never more than inflight state-changing calls at once")
	require.Greater(t, peak, 1, "independent objects are in flight together")
	e.requireConverged(st)
}

func TestDNOneFailingVDDoesNotBlockTheOthers(t *testing.T) {
	e := newDNEnv(t)
	st := dnState(2, 4, nvmeof.NewID(), nvmeof.NewID(), 1)
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(st.Pds[0].Id, 128<<20), mallocPD(st.Pds[1].Id, 128<<20)}})
	e.fake.Inject("bdev_lvol_create", spdktestError(-28, "No space left on device", 1))
	out := e.sync(st)
	failed := failedStatuses(out)
	require.Len(t, failed, 1, "%v", out)
	require.Equal(t, agentpb.Kind_KIND_VD, failed[0].Kind)
	require.Contains(t, failed[0].Error, "No space left on device")
	require.Contains(t, failed[0].Error, "bdev_lvol_create")
	// The next sync makes the one that failed.
	e.syncOK(st)
	e.requireConverged(st)
	require.True(t, slices.ContainsFunc(st.Pds[0].Vds, func(v *agentpb.VdSpec) bool { return v.Id == failed[0].Id }) ||
		slices.ContainsFunc(st.Pds[1].Vds, func(v *agentpb.VdSpec) bool { return v.Id == failed[0].Id }))
}

func TestDNGrowsButNeverShrinksALvol(t *testing.T) {
	e := newDNEnv(t)
	ctx := context.Background()
	pd := nvmeof.NewID()
	small, big := vdSpec(nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1, 8), vdSpec(nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID(), 1, 8)
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(pd, 128<<20)}})
	lvs := nvmeof.PDLvstoreName(pd)
	for vd, mib := range map[*agentpb.VdSpec]uint64{small: 4, big: 12} {
		_, err := e.c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{LvolName: nvmeof.VDLvolName(vd.Id), LvsName: lvs,
			SizeInMiB: new(mib), ThinProvision: new(false)})
		require.NoError(t, err)
	}
	out := e.sync(&agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(pd, 128<<20, small, big)}})
	require.True(t, statusOf(t, out, agentpb.Kind_KIND_VD, small.Id).Ok)
	b := statusOf(t, out, agentpb.Kind_KIND_VD, big.Id)
	require.False(t, b.Ok)
	require.Contains(t, b.Error, "not shrinking")
	bdevs, err := e.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: nvmeof.LvolAlias(lvs, nvmeof.VDLvolName(small.Id))})
	require.NoError(t, err)
	require.EqualValues(t, 8<<20, bdevs[0].SizeBytes(), "grown to the VD's size")
	bdevs, err = e.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: nvmeof.LvolAlias(lvs, nvmeof.VDLvolName(big.Id))})
	require.NoError(t, err)
	require.EqualValues(t, 12<<20, bdevs[0].SizeBytes(), "its data is kept")
}

// A new lvstore clears its disk, except on a malloc bdev the same sync
// made (SPDK allocates it zeroed): clearing that one is seconds of memset
// per GiB for nothing.
func TestDNClearsLvstoreUnlessMallocIsNew(t *testing.T) {
	clearOf := func(e *dnEnv) any {
		t.Helper()
		for _, m := range e.rec.mutations() {
			if m.Method == "bdev_lvol_create_lvstore" {
				return m.Params["clear_method"]
			}
		}
		require.Fail(t, "no lvstore created")
		return nil
	}
	e := newDNEnv(t)
	e.rec.reset()
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(nvmeof.NewID(), 64<<20)}})
	require.Equal(t, "none", clearOf(e), "a malloc made by this sync")

	e = newDNEnv(t)
	pd := nvmeof.NewID()
	_, err := e.c.BdevMallocCreate(context.Background(), spdk.BdevMallocCreateParams{Name: nvmeof.PDBdevName(pd), BlockSize: blockBytes,
		NumBlocks: 64 << 20 / blockBytes})
	require.NoError(t, err)
	e.rec.reset()
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(pd, 64<<20)}})
	require.Equal(t, dnLvstoreClearMethod, clearOf(e), "a malloc that was there before the sync")
}
