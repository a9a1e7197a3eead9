package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

const cnDataOff = 3 << 20 // crosses strips of both VDs

func cnWrite(t *testing.T, conn *fabric.Conn, data []byte) {
	t.Helper()
	_, err := conn.WriteAt(1, data, cnDataOff)
	require.NoError(t, err)
}

func cnRead(t *testing.T, conn *fabric.Conn, n int) []byte {
	t.Helper()
	got := make([]byte, n)
	_, err := conn.ReadAt(1, got, cnDataOff)
	require.NoError(t, err)
	return got
}

// The host writes through the primary and reads through the secondary;
// the primary's SPDK dies; the secondary is promoted, re-assembles the
// array from the same VDs, finds the same lvstore, and serves the data
// bit-exact, under the same subsystem a connected host stays connected to.
func TestCNDataSurvivesPromotion(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	data := cnPattern(512<<10, 0x5a)
	cnWrite(t, cl.host(0), data)
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(1), len(data))), "the secondary proxies to the primary")
	lvs := cl.cns[0].lvstore(nvmeof.DALvstoreName(cl.daID))
	viaSecondary := cl.host(1)

	cl.cns[0].fake.Crash()
	cl.down[0] = true
	cl.cns[1].fake.ResetCounts()
	cl.failover(1)

	s := cl.cns[1]
	require.Equal(t, cl.wantPrimaryObjects(true), s.cnOwned(), "promoted: no export controller left")
	require.Equal(t, lvs.UUID, s.lvstore(lvs.Name).UUID, "the same lvstore, found by examine")
	require.Zero(t, s.fake.RPCCount("bdev_lvol_create_lvstore"))
	require.Zero(t, s.fake.RPCCount("nvmf_delete_subsystem"), "the exporter subsystem was kept")
	require.Equal(t, 2, s.fake.RPCCount("nvmf_subsystem_listener_set_ana_state"), "withdrawn, then optimized")
	require.Zero(t, s.fake.RPCCount("nvmf_subsystem_get_listeners"), "the withdrawal told the listener's state")
	require.Equal(t, spdk.ANAOptimized, s.anaState(cl.nqn))
	ss := s.subsystem(cl.nqn)
	lo, hi, err := nvmeof.ControllerIDRange(1)
	require.NoError(t, err)
	require.Equal(t, []uint16{lo, hi}, []uint16{ss.MinCntlID, ss.MaxCntlID})
	require.ElementsMatch(t, []string{string(cl.initiator), string(nvmeof.HostNQN(cl.cntlrs[0]))}, cnHostNQNs(ss))
	select {
	case <-viaSecondary.Done():
		t.Fatal("the host lost its connection to the promoted controller")
	default:
	}

	host := cl.host(1)
	require.True(t, bytes.Equal(data, cnRead(t, host, len(data))), "data written through the old primary")
	more := cnPattern(64<<10, 0xa5)
	_, err = host.WriteAt(1, more, 0)
	require.NoError(t, err)
	got := make([]byte, len(more))
	_, err = host.ReadAt(1, got, 0)
	require.NoError(t, err)
	require.Equal(t, more, got)

	s.fake.ResetCounts()
	s.syncCNOK(cl.cnState(1))
	require.Empty(t, s.mutations())
}

// A promoted secondary finds its initialized array's lvol as examine brings
// it back, without bdev_wait_for_examine: that waits for every examine on
// the node, which a promotion of many arrays keeps starting (here it would
// never answer).
func TestCNPromotionDoesNotWaitForOtherExamines(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	cl.cns[0].fake.Crash()
	cl.down[0] = true
	cl.primary, cl.epoch = 1, cl.epoch+1
	cl.syncDNs()
	s := cl.cns[1]
	s.fake.Inject("bdev_wait_for_examine", spdktest.Fault{Hang: true})
	s.fake.ResetCounts()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, o := range s.cn.sync(ctx, cl.cnState(1)) {
		require.True(t, o.GetOk(), "%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
	}
	require.Zero(t, s.fake.RPCCount("bdev_wait_for_examine"))
	require.Zero(t, s.fake.RPCCount("bdev_lvol_create_lvstore"))
	require.Equal(t, spdk.ANAOptimized, s.anaState(cl.nqn))
}

// With four controllers, the primary dies, the first secondary is
// promoted, and the other two are re-pointed: they detach their export
// controller (still pointing at the dead primary) and attach the new
// primary's export; the host reads through them.
func TestCNRepointsEverySecondary(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 4)
	cl.build()
	data := cnPattern(256<<10, 0x33)
	cnWrite(t, cl.host(0), data)

	cl.cns[0].fake.Crash()
	cl.down[0] = true
	for _, i := range []int{2, 3} {
		cl.cns[i].fake.ResetCounts()
	}
	cl.failover(1)
	for _, i := range []int{2, 3} {
		cn := cl.cns[i]
		require.Equal(t, cl.wantSecondaryObjects(), cn.cnOwned())
		ctrls, err := cn.c.BdevNvmeGetControllers(context.Background(), spdk.BdevNvmeGetControllersParams{})
		require.NoError(t, err)
		require.Len(t, ctrls, 1)
		require.Equal(t, cl.cns[1].listener.TrSvcID, ctrls[0].Ctrlrs[0].TRID.TRSvcID, "points at the new primary")
		require.Equal(t, 1, cn.fake.RPCCount("bdev_nvme_detach_controller"), "the stale controller was detached")
		require.Zero(t, cn.fake.RPCCount("nvmf_delete_subsystem"))
		require.Zero(t, cn.fake.RPCCount("nvmf_subsystem_get_listeners"), "the withdrawal told the listener's state")
		require.Equal(t, spdk.ANANonOptimized, cn.anaState(cl.nqn))
		require.True(t, bytes.Equal(data, cnRead(t, cl.host(i), len(data))), "controller %d", i)
	}
	ss := cl.cns[1].subsystem(cl.nqn)
	require.ElementsMatch(t, []string{string(cl.initiator), string(nvmeof.HostNQN(cl.cntlrs[0])),
		string(nvmeof.HostNQN(cl.cntlrs[2])), string(nvmeof.HostNQN(cl.cntlrs[3]))}, cnHostNQNs(ss))
}

// A planned switchover demotes a live primary: it unloads the array in
// order (exporter namespace, raid, VD controllers) without deleting
// anything, then proxies to the new primary, which finds the same
// lvstore. Back and forth, the data and the lvstore UUID stay.
func TestCNDemotionKeepsDataAndLvstore(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	old := newRecordedCNEnv(t)
	cl.cns[0] = old
	cl.build()
	lvs := old.lvstore(nvmeof.DALvstoreName(cl.daID))
	data := cnPattern(256<<10, 0x11)
	cnWrite(t, cl.host(0), data)

	old.rec.take()
	cl.failover(1)
	// The demotion's steps, in order: the lvol leaves the export, the raid
	// goes (unloading the lvstore), then the VD controllers; then the proxy.
	// (SPDK may already have dropped fenced VD controllers by itself.)
	reqs := cnMutating(old.rec.take())
	raidAt := cnIndex(reqs, "bdev_raid_delete", nvmeof.RaidName(cl.daID))
	require.GreaterOrEqual(t, raidAt, 0, "%v", cnMethods(reqs))
	if ns := cnIndex(reqs, "nvmf_subsystem_remove_ns", ""); ns >= 0 {
		require.Less(t, ns, raidAt)
	}
	for _, vd := range cl.vds {
		if at := cnIndex(reqs, "bdev_nvme_detach_controller", nvmeof.VDControllerName(vd)); at >= 0 {
			require.Greater(t, at, raidAt)
		}
	}
	require.Greater(t, cnIndex(reqs, "bdev_nvme_attach_controller", nvmeof.ExpControllerName(cl.expID)), raidAt)
	require.Equal(t, cl.wantSecondaryObjects(), old.cnOwned())
	require.Equal(t, lvs.UUID, cl.cns[1].lvstore(lvs.Name).UUID)
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(1), len(data))), "through the new primary")
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(0), len(data))), "through the demoted one, now a proxy")

	again := cnPattern(256<<10, 0x22)
	cnWrite(t, cl.host(1), again)
	cl.failover(0)
	require.Equal(t, lvs.UUID, old.lvstore(lvs.Name).UUID)
	require.Equal(t, cl.wantPrimaryObjects(true), old.cnOwned())
	require.Equal(t, cl.wantSecondaryObjects(), cl.cns[1].cnOwned())
	require.True(t, bytes.Equal(again, cnRead(t, cl.host(0), len(again))))
	for _, cn := range cl.cns {
		for _, m := range []string{"bdev_lvol_delete", "bdev_lvol_delete_lvstore"} {
			require.Zero(t, cn.fake.RPCCount(m), m)
		}
	}
}

// A primary whose stack was built at an older epoch (it was fenced and
// never told it was demoted, then promoted again) re-assembles the array
// from the disks instead of trusting what it has loaded.
func TestCNPrimaryRebuildsAStackOfAnOlderEpoch(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	p := cl.cns[0]
	cl.epoch = 3 // epochs 2 and 3 happened elsewhere
	cl.syncDNs()
	p.fake.ResetCounts()
	p.syncCNOK(cl.cnState(0))
	require.Equal(t, 1, p.fake.RPCCount("bdev_raid_delete"))
	require.Equal(t, 1, p.fake.RPCCount("bdev_raid_create"))
	raids, err := p.c.BdevRaidGetBdevs(context.Background(), spdk.BdevRaidGetBdevsParams{Category: spdk.RaidAll})
	require.NoError(t, err)
	e, ok := nvmeof.RaidEpoch(cl.daID, raids[0].UUID)
	require.True(t, ok)
	require.Equal(t, int64(3), e)
	p.fake.ResetCounts()
	p.syncCNOK(cl.cnState(0))
	require.Empty(t, p.mutations())
}

// A secondary whose primary is down reports it and keeps its export (the
// path reconnects by itself), without changing anything.
func TestCNSecondaryReportsAnUnreachablePrimary(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	s := cl.cns[1]
	cl.cns[0].fake.Crash()
	s.fake.ResetCounts()
	require.Eventually(t, func() bool {
		st := cnStatus(t, s.syncCN(cl.cnState(1)), agentpb.Kind_KIND_CNTLR, cl.cntlrs[1])
		return !st.GetOk() && strings.Contains(st.GetError(), "path to the primary")
	}, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, s.mutations())
	require.Equal(t, cl.wantSecondaryObjects(), s.cnOwned())
}

// cnIndex returns the position of the first request of method whose
// "name" param is name ("" matches any), or -1.
func cnIndex(reqs []cnRequest, method, name string) int {
	for i, q := range reqs {
		if q.Method != method {
			continue
		}
		var p struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(q.Params, &p)
		if name == "" || p.Name == name {
			return i
		}
	}
	return -1
}

// An export controller SPDK gave up on ("failed": attached without a
// reconnect policy, then dropped by the primary) is detached and attached
// again; a second attach without the detach would fail (-17).
func TestCNSecondaryReplacesAFailedExportController(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	p, s := cl.cns[0], cl.cns[1]
	ctx := context.Background()
	name := nvmeof.ExpControllerName(cl.expID)
	require.NoError(t, s.c.BdevNvmeDetachController(ctx, spdk.BdevNvmeDetachControllerParams{Name: name}))
	l := p.listener
	_, err := s.c.BdevNvmeAttachController(ctx, spdk.BdevNvmeAttachControllerParams{Name: name, TRType: l.TrType,
		TRAddr: l.TrAddr, AdrFam: l.AdrFam, TRSvcID: l.TrSvcID, SubNQN: string(cl.nqn), HostNQN: string(nvmeof.HostNQN(cl.cntlrs[1]))})
	require.NoError(t, err)
	require.NoError(t, p.c.NvmfSubsystemRemoveHost(ctx, spdk.NvmfSubsystemHostParams{NQN: string(cl.nqn),
		Host: string(nvmeof.HostNQN(cl.cntlrs[1]))}))
	require.Eventually(t, func() bool {
		c, err := s.c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{Name: name})
		return err == nil && cnCtrlrFailed(&c[0])
	}, 10*time.Second, 5*time.Millisecond)
	p.syncCNOK(cl.cnState(0)) // the primary admits the secondary again
	s.fake.ResetCounts()
	s.syncCNOK(cl.cnState(1))
	require.Equal(t, 1, s.fake.RPCCount("bdev_nvme_detach_controller"))
	require.Equal(t, 1, s.fake.RPCCount("bdev_nvme_attach_controller"))
	c, err := s.c.BdevNvmeGetControllers(ctx, spdk.BdevNvmeGetControllersParams{Name: name})
	require.NoError(t, err)
	require.Equal(t, spdk.CtrlrEnabled, c[0].Ctrlrs[0].State)
	require.Equal(t, cl.wantSecondaryObjects(), s.cnOwned())
	cnRead(t, cl.host(1), 4096)
}

// A promotion of many arrays looks for the detached proxies' namespaces
// once, in one listing of every subsystem between the attaches and the
// builds, not once per array; a namespace that listing still shows (real
// SPDK removes it asynchronously) is waited for in its array's build. Here
// the listing fails, which leaves every array to wait on its own.
func TestCNPromotionLooksForLeavingNamespacesAtOnce(t *testing.T) {
	const das = 2 * cnLeavingListAt
	for _, listingFails := range []bool{false, true} {
		pb := newCNPromoBench(t, das, false)
		pb.cns[0].fake.Crash()
		pb.primary, pb.epoch = 1, pb.epoch+1
		pb.syncDNs()
		s := pb.cns[1]
		if listingFails {
			// The sync's own listing first, then the one of the leaving namespaces.
			s.fake.Inject("nvmf_get_subsystems", spdktest.Fault{Times: 1})
			s.fake.Inject("nvmf_get_subsystems", spdktest.Fault{Times: 1, Error: &spdktest.Error{Code: -32603, Message: "injected"}})
		}
		s.fake.ResetCounts()
		cnPromoRequireOK(t, s.syncCN(pb.cnState(1, true)), das)
		want := 2 // the sync's listing and the leaving namespaces'
		if listingFails {
			want = 2 + das
		}
		require.Equal(t, want, s.fake.RPCCount("nvmf_get_subsystems"), "listing fails: %v", listingFails)
		for _, x := range pb.das {
			ss := s.subsystem(x.nqn)
			require.Len(t, ss.Namespaces, 1)
			require.NotEqual(t, nvmeof.ExpBdevName(x.exp), ss.Namespaces[0].BdevName, "the DA lvol, not the proxy")
			require.Equal(t, spdk.ANAOptimized, s.anaState(x.nqn))
		}
	}
}
