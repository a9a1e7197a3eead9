package agent

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

func TestCNPrimaryBuildsTheRecipe(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.syncDNs()
	p := cl.cns[0]

	// Not initialized: everything up to the lvol, and the exporter for
	// the secondary only: no host may write yet.
	out := p.syncCN(cl.cnState(0))
	st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
	require.True(t, st.GetOk(), st.GetError())
	require.True(t, st.GetDaInitialized())
	port := cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[0])
	require.False(t, port.GetOk())
	require.Contains(t, port.GetError(), "not initialized")
	require.True(t, port.GetSecondariesOnly())
	require.Equal(t, cl.wantPrimaryObjects(true), p.cnOwned())
	require.Equal(t, []string{string(nvmeof.HostNQN(cl.cntlrs[1]))}, cnHostNQNs(p.subsystem(cl.nqn)))

	ctx := context.Background()
	ctrls, err := p.c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{})
	require.NoError(t, err)
	for _, c := range ctrls {
		require.Len(t, c.Ctrlrs, 1)
		require.Equal(t, string(nvmeof.PrimaryHostNQN(cl.cntlrs[0], uint64(cl.epoch))), c.Ctrlrs[0].Host.NQN, c.Name)
	}
	raids, err := p.c.BdevRaidGetBdevs(ctx, spdk.BdevRaidGetBdevsParams{Category: spdk.RaidAll})
	require.NoError(t, err)
	require.Len(t, raids, 1)
	r := raids[0]
	require.Equal(t, "raid0", r.RaidLevel)
	require.Equal(t, uint32(cnTestStripKB), r.StripSizeKB)
	require.Equal(t, spdk.RaidOnline, r.State)
	require.Equal(t, nvmeof.VDBdevName(cl.vds[0]), r.BaseBdevsList[0].Name)
	require.Equal(t, nvmeof.VDBdevName(cl.vds[1]), r.BaseBdevsList[1].Name)
	epoch, ok := nvmeof.RaidEpoch(cl.daID, r.UUID)
	require.True(t, ok)
	require.Equal(t, cl.epoch, epoch)

	lvs := p.lvstore(nvmeof.DALvstoreName(cl.daID))
	require.NotNil(t, lvs)
	require.Equal(t, uint64(cnTestCluster), lvs.ClusterSize)
	require.Equal(t, nvmeof.RaidName(cl.daID), lvs.BaseBdev)
	alias := nvmeof.LvolAlias(lvs.Name, nvmeof.DALvolName(cl.daID))
	lvol, err := p.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: alias})
	require.NoError(t, err)
	require.Equal(t, uint64(cnTestDABytes), lvol[0].SizeBytes(), "exactly the array's size")
	require.True(t, lvol[0].DriverSpecific.Lvol.ThinProvision)

	// Initialized: the exporter admits the host too.
	cl.initialized = true
	p.syncCNOK(cl.cnState(0))
	require.Equal(t, cl.wantPrimaryObjects(true), p.cnOwned())
	ss := p.subsystem(cl.nqn)
	require.NotNil(t, ss)
	require.Equal(t, nvmeof.SerialNumber(cl.nqn), ss.SerialNumber)
	require.Equal(t, nvmeof.ModelNumber, ss.ModelNumber)
	require.False(t, ss.AllowAnyHost)
	require.Equal(t, uint16(1), ss.MinCntlID)
	require.Equal(t, uint16(1000), ss.MaxCntlID)
	require.Len(t, ss.Namespaces, 1)
	require.Equal(t, uint32(1), ss.Namespaces[0].NSID)
	require.Equal(t, lvol[0].Name, ss.Namespaces[0].BdevName)
	require.Equal(t, nvmeof.NamespaceUUID(cl.nqn), ss.Namespaces[0].UUID)
	require.Len(t, ss.ListenAddresses, 1)
	require.Equal(t, p.listener.TrSvcID, ss.ListenAddresses[0].TRSvcID)
	require.ElementsMatch(t, []string{string(cl.initiator), string(nvmeof.HostNQN(cl.cntlrs[1]))}, cnHostNQNs(ss))
	require.Equal(t, spdk.ANAOptimized, p.anaState(cl.nqn))
}

func cnHostNQNs(ss *spdk.Subsystem) []string {
	var out []string
	for _, h := range ss.Hosts {
		out = append(out, h.NQN)
	}
	return out
}

func TestCNSecondaryReExportsWithItsOwnRange(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 3)
	cl.build()
	for i := 1; i < 3; i++ {
		s := cl.cns[i]
		require.Equal(t, cl.wantSecondaryObjects(), s.cnOwned())
		ss := s.subsystem(cl.nqn)
		require.Equal(t, nvmeof.SerialNumber(cl.nqn), ss.SerialNumber)
		require.Equal(t, nvmeof.ModelNumber, ss.ModelNumber)
		lo, hi, err := nvmeof.ControllerIDRange(i)
		require.NoError(t, err)
		require.Equal(t, lo, ss.MinCntlID)
		require.Equal(t, hi, ss.MaxCntlID)
		require.Equal(t, nvmeof.ExpBdevName(cl.expID), ss.Namespaces[0].BdevName)
		require.Equal(t, nvmeof.NamespaceUUID(cl.nqn), ss.Namespaces[0].UUID)
		require.Equal(t, []string{string(cl.initiator)}, cnHostNQNs(ss))
		require.Equal(t, spdk.ANANonOptimized, s.anaState(cl.nqn))
		ctrls, err := s.c.BdevNvmeGetControllers(context.Background(), spdk.BdevNvmeGetControllersParams{})
		require.NoError(t, err)
		require.Len(t, ctrls, 1)
		require.Equal(t, cl.cns[0].listener.TrSvcID, ctrls[0].Ctrlrs[0].TRID.TRSvcID)
		require.Equal(t, string(nvmeof.HostNQN(cl.cntlrs[i])), ctrls[0].Ctrlrs[0].Host.NQN)
	}
	// The host sees one subsystem over three paths with disjoint cntlids.
	seen := map[uint16]bool{}
	for i := range cl.cns {
		info := cl.host(i).Info()
		require.Equal(t, nvmeof.SerialNumber(cl.nqn), info.SerialNumber)
		require.False(t, seen[info.CntlID], "cntlid %d handed out twice", info.CntlID)
		seen[info.CntlID] = true
		require.Len(t, info.Namespaces, 1)
		require.Equal(t, nvmeof.NamespaceUUID(cl.nqn), info.Namespaces[0].UUID)
	}
}

// A resync of an unchanged state must only read: level-triggered, no churn.
func TestCNResyncOnlyReads(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	for i, cn := range cl.cns {
		cn.fake.ResetCounts()
		cn.syncCNOK(cl.cnState(i))
		require.Empty(t, cn.mutations(), "controller %d", i)
		require.NotZero(t, cn.fake.TotalRPCs())
	}
}

func TestCNRepairsDrift(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	p := cl.cns[0]
	ctx := context.Background()
	nqn := string(cl.nqn)
	la := spdk.ListenAddress{TRType: "tcp", TRAddr: p.listener.TrAddr, AdrFam: "ipv4", TRSvcID: p.listener.TrSvcID}
	wantHosts := []string{string(cl.initiator), string(nvmeof.HostNQN(cl.cntlrs[1]))}
	lvs := p.lvstore(nvmeof.DALvstoreName(cl.daID))
	cases := []struct {
		name  string
		drift func()
	}{
		{"subsystem deleted", func() { require.NoError(t, p.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: nqn})) }},
		{"extra host", func() {
			require.NoError(t, p.c.NvmfSubsystemAddHost(ctx, spdk.NvmfSubsystemHostParams{NQN: nqn, Host: "nqn.2016-06.io.example:intruder"}))
		}},
		{"host removed", func() {
			require.NoError(t, p.c.NvmfSubsystemRemoveHost(ctx, spdk.NvmfSubsystemHostParams{NQN: nqn, Host: string(cl.initiator)}))
		}},
		{"wrong ANA state", func() {
			require.NoError(t, p.c.NvmfSubsystemListenerSetANAState(ctx, spdk.NvmfSubsystemListenerSetANAStateParams{
				NQN: nqn, ListenAddress: la, ANAState: spdk.ANAInaccessible}))
		}},
		{"listener removed", func() {
			require.NoError(t, p.c.NvmfSubsystemRemoveListener(ctx, spdk.NvmfSubsystemRemoveListenerParams{NQN: nqn, ListenAddress: la}))
		}},
		{"extra listener", func() {
			other := testListener(t, p.fake)
			require.NoError(t, p.c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerParams{NQN: nqn,
				ListenAddress: spdk.ListenAddress{TRType: "tcp", TRAddr: other.TrAddr, AdrFam: "ipv4", TRSvcID: other.TrSvcID}}))
		}},
		{"namespace removed", func() {
			require.NoError(t, p.c.NvmfSubsystemRemoveNs(ctx, spdk.NvmfSubsystemRemoveNsParams{NQN: nqn, NSID: 1}))
		}},
		{"wrong identity", func() {
			require.NoError(t, p.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: nqn}))
			require.NoError(t, p.c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemParams{NQN: nqn, SerialNumber: "wrong"}))
		}},
		{"raid deleted", func() { require.NoError(t, p.c.BdevRaidDelete(ctx, spdk.NameParams{Name: nvmeof.RaidName(cl.daID)})) }},
		// Detaching a member under the assembled raid would crash SPDK
		// (and the fake): that is not drift an agent can repair.
		{"raid deleted, then a VD controller detached", func() {
			require.NoError(t, p.c.BdevRaidDelete(ctx, spdk.NameParams{Name: nvmeof.RaidName(cl.daID)}))
			require.NoError(t, p.c.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerParams{Name: nvmeof.VDControllerName(cl.vds[1])}))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.drift()
			p.syncCNOK(cl.cnState(0))
			require.Equal(t, cl.wantPrimaryObjects(true), p.cnOwned())
			ss := p.subsystem(cl.nqn)
			require.ElementsMatch(t, wantHosts, cnHostNQNs(ss))
			require.Len(t, ss.ListenAddresses, 1)
			require.Equal(t, p.listener.TrSvcID, ss.ListenAddresses[0].TRSvcID)
			require.Equal(t, nvmeof.SerialNumber(cl.nqn), ss.SerialNumber)
			require.Len(t, ss.Namespaces, 1)
			require.Equal(t, nvmeof.NamespaceUUID(cl.nqn), ss.Namespaces[0].UUID)
			require.Equal(t, spdk.ANAOptimized, p.anaState(cl.nqn))
			require.Equal(t, lvs.UUID, p.lvstore(lvs.Name).UUID, "the lvstore is found again, never re-created")
			p.fake.ResetCounts()
			p.syncCNOK(cl.cnState(0))
			require.Empty(t, p.mutations(), "repaired: the next sync only reads")
		})
	}
	require.Zero(t, p.fake.RPCCount("bdev_lvol_create_lvstore"))
}

// An initialized array whose lvstore examine cannot find (here: VDs that
// never held one) reports an error and never gets a new lvstore.
func TestCNInitializedArrayNeverGetsANewLvstore(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 1)
	cl.syncDNs()
	cl.initialized = true
	p := cl.cns[0]
	p.fake.ResetCounts()
	for i := range 3 {
		out := p.syncCN(cl.cnState(0))
		st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
		require.False(t, st.GetOk())
		require.False(t, st.GetDaInitialized())
		// The sync that assembled the raid does not wait out every examine
		// on the node: not loaded yet. The next ones know it is missing.
		want := errCNLvstoreMissing
		if i == 0 {
			want = errCNNotReady
		}
		require.Contains(t, st.GetError(), want.Error(), "sync %d", i)
		require.False(t, cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[0]).GetOk())
	}
	require.Zero(t, p.fake.RPCCount("bdev_lvol_create_lvstore"))
	require.Nil(t, p.subsystem(cl.nqn), "no exporter without the lvstore")
}

// Cleaning up an array no longer wanted unloads it: nothing of it stays
// on the CN, objects VDA does not own are untouched, and the array comes
// back whole.
func TestCNCleanupUnloadsWithoutDeleting(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	p := cl.cns[0]
	ctx := context.Background()
	_, err := p.c.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: "foreign", BlockSize: 4096, NumBlocks: 256})
	require.NoError(t, err)
	require.NoError(t, p.c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemParams{NQN: "nqn.2016-06.io.example:foreign"}))
	lvs := p.lvstore(nvmeof.DALvstoreName(cl.daID))

	for i, cn := range cl.cns {
		cn.syncCNOK(&agentpb.CnState{})
		require.Empty(t, cn.cnOwned(), "controller %d", i)
	}
	_, err = p.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: "foreign"})
	require.NoError(t, err, "a bdev VDA does not own stays")
	require.NotNil(t, p.subsystem("nqn.2016-06.io.example:foreign"), "a subsystem VDA does not own stays")

	cl.syncCNs()
	require.Equal(t, lvs.UUID, p.lvstore(lvs.Name).UUID)
	require.Equal(t, cl.wantPrimaryObjects(true), p.cnOwned())
}

func TestCNInvalidSpecTouchesNothing(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 1)
	cl.build()
	p := cl.cns[0]
	bad := cl.cnState(0)
	bad.Cntlrs[0].Da.StripeSizeKb = 48
	p.fake.ResetCounts()
	out := p.syncCN(bad)
	require.Contains(t, cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0]).GetError(), errCNSpec.Error())
	require.False(t, cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[0]).GetOk())
	require.Empty(t, p.mutations(), "a bad spec changes nothing, and its objects are no orphans")
	require.Equal(t, cl.wantPrimaryObjects(true), p.cnOwned())
}

// An initialized array whose lvstore is loaded without its lvol (on real
// SPDK: the lvol failed to open while examine loaded the lvstore; here it
// is deleted behind the agent's back) never gets a new, empty lvol: it is
// reported, not exported, and re-assembled in the next sync so that SPDK
// opens the lvstore's lvols again: once, not on every sync.
func TestCNInitializedArrayNeverGetsANewLvol(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 1)
	cl.build()
	p := cl.cns[0]
	ctx := context.Background()
	lvs := p.lvstore(nvmeof.DALvstoreName(cl.daID))
	require.NoError(t, p.c.NvmfDeleteSubsystem(ctx, spdk.NQNParams{NQN: string(cl.nqn)}))
	require.NoError(t, p.c.BdevLvolDelete(ctx, spdk.NameParams{Name: nvmeof.LvolAlias(lvs.Name, nvmeof.DALvolName(cl.daID))}))
	p.fake.ResetCounts()
	for i := range 3 {
		out := p.syncCN(cl.cnState(0))
		st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
		require.False(t, st.GetOk(), "sync %d", i)
		require.False(t, st.GetDaInitialized(), "sync %d", i)
		require.Contains(t, st.GetError(), errCNLvolMissing.Error(), "sync %d", i)
		require.False(t, cnStatus(t, out, agentpb.Kind_KIND_EXP_PORT, cl.ports[0]).GetOk())
	}
	require.Zero(t, p.fake.RPCCount("bdev_lvol_create"))
	require.Zero(t, p.fake.RPCCount("bdev_lvol_create_lvstore"))
	require.Equal(t, 1, p.fake.RPCCount("bdev_raid_delete"), "re-assembled once to open the lvols again")
	require.Nil(t, p.subsystem(cl.nqn), "no exporter without the lvol")
	require.Equal(t, lvs.UUID, p.lvstore(lvs.Name).UUID, "the lvstore is kept")
}

// An array whose lvol could not be made in the sync that made its lvstore
// is not reported initialized, so the next sync still makes the lvol.
func TestCNArrayWithoutLvolIsNotInitialized(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 1)
	cl.syncDNs()
	p := cl.cns[0]
	p.fake.Inject("bdev_lvol_create", spdktest.Fault{Error: &spdktest.Error{Code: -12, Message: "Cannot allocate memory"}, Times: 1})
	st := cnStatus(t, p.syncCN(cl.cnState(0)), agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
	require.False(t, st.GetOk())
	require.False(t, st.GetDaInitialized())
	require.NotNil(t, p.lvstore(nvmeof.DALvstoreName(cl.daID)))
	st = cnStatus(t, p.syncCN(cl.cnState(0)), agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
	require.True(t, st.GetOk(), st.GetError())
	require.True(t, st.GetDaInitialized())
	require.Equal(t, 2, p.fake.RPCCount("bdev_lvol_create"))
}
