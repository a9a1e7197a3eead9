package monitor

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/spdk/spdktest"
)

// A fresh DA's secondary is pushed once its primary exports, so its attach
// of the primary's export is never refused and its node is not synced
// over and over meanwhile: here the primary's raid takes a second to
// make (real agents on the fake SPDK). Likewise the primary is pushed once
// its disk nodes export its VDs.
func TestRealFreshSecondaryWaitsForExport(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	for _, n := range rc.cns {
		eventually(t, func() bool { return n.SPDK.RPCCount("nvmf_get_transports") > 0 }, wait, 5*time.Millisecond)
		n.SPDK.Inject("bdev_raid_create", spdktest.Fault{Latency: time.Second, Times: 1})
		n.SPDK.ResetCounts()
	}
	da := rc.createDA("da0", 2, 2)
	waitServed(t, rc, "da0")
	eventually(t, func() bool {
		exp, err := rc.c.GetExporter(context.Background(), "da0", "exp0")
		return err == nil && exp.Status.Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
	p, _ := da.Primary()
	require.Equal(t, 2, rc.node(p.CNName).SPDK.RPCCount("bdev_nvme_attach_controller"), "the primary attached a VD more than once")
	sec := rc.node(otherCntlr(da, p.ID).CNName).SPDK
	require.Equal(t, 1, sec.RPCCount("bdev_nvme_attach_controller"), "the secondary attached the primary's export more than once")
	require.LessOrEqual(t, sec.RPCCount("nvmf_get_transports"), 3, "the secondary's node synced while it waited")
}

// notReadyScript reports the controllers and ports of the primaries of
// every DA but those of keep not ready, as a primary whose VDs cannot be
// reached does.
func notReadyScript(keep ...string) func(*agentpb.SyncRequest) (*agentpb.SyncReply, error) {
	return func(req *agentpb.SyncRequest) (*agentpb.SyncReply, error) {
		r := agenttest.OKReply(req)
		bad := map[string]bool{}
		for _, c := range req.GetCn().GetCntlrs() {
			if c.GetPrimary() && !slices.Contains(keep, c.GetDa().GetId()) {
				bad[c.GetCntlrId()] = true
				for _, e := range c.GetExps() {
					bad[e.GetPortId()] = true
				}
			}
		}
		for _, o := range r.Objects {
			if bad[o.GetId()] {
				o.Ok, o.Error, o.DaInitialized = false, "vd 0: connection refused", false
			}
		}
		return r, nil
	}
}

// What a secondary's node has stays in its state: a primary that is not
// ready any more, and a new monitor (which remembers nothing) taking over,
// do not take it away. A DA whose primary never gets ready never reaches
// its secondary's node, and its status says why.
func TestSecondaryKeptWhilePrimaryNotReady(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	da0 := tc.createDA("da0", 2, 2)
	_, stop := startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool {
		exp, err := tc.c.GetExporter(ctx, "da0", "exp0")
		return tc.allConverged(tc.all()...) && err == nil && exp.Status.Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
	p, _ := da0.Primary()
	sc := otherCntlr(da0, p.ID)
	pcn, scn := tc.agent(p.CNName), tc.agent(sc.CNName)
	hasDA0 := func(req *agentpb.SyncRequest) bool {
		for _, c := range req.GetCn().GetCntlrs() {
			if c.GetCntlrId() == sc.ID {
				return len(c.GetExps()) == 1
			}
		}
		return false
	}
	require.True(t, hasDA0(scn.LastApplied()))

	// From now on no primary but da0's on scn is ever ready, and none on
	// pcn: a new monitor takes over.
	pcn.SetScript(notReadyScript())
	scn.SetScript(notReadyScript(da0.ID))
	stop()
	mark := len(scn.Records())
	startMonitor(t, testConfig(s, "m1"))
	eventually(t, func() bool { return tc.da("da0").Status.Part(p.ID).Health == vda.HealthDegraded }, wait, 5*time.Millisecond)
	da1 := tc.createDA("da1", 2, 2)
	p1, _ := da1.Primary()
	eventually(t, func() bool {
		st := tc.da("da1").Status
		return st.Health == vda.HealthDegraded && strings.Contains(st.ErrorMsg, "connection refused")
	}, wait, 5*time.Millisecond, "da1's status does not say why it is not ready")
	// A change of da0's exporter reaches both nodes: a push planned after
	// da1 was.
	_, err := tc.c.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: []string{"nqn.2016-06.io.spdk:host9"}})
	require.NoError(t, err)
	for _, a := range []*agenttest.Fake{pcn, scn} {
		eventually(t, func() bool {
			for _, c := range a.LastApplied().GetCn().GetCntlrs() {
				for _, e := range c.GetExps() {
					if slices.Contains(e.GetHostNqns(), "nqn.2016-06.io.spdk:host9") {
						return true
					}
				}
			}
			return false
		}, wait, 5*time.Millisecond)
	}
	recs := scn.Records()[mark:]
	require.NotEmpty(t, recs)
	for _, r := range recs {
		require.True(t, hasDA0(r.Req), "da0's secondary left out of a push (generation %d)", r.Req.GetGeneration())
	}
	sc1 := otherCntlr(da1, p1.ID)
	for _, a := range []*agenttest.Fake{pcn, scn} {
		for _, r := range a.Records() {
			for _, c := range r.Req.GetCn().GetCntlrs() {
				require.NotEqual(t, sc1.ID, c.GetCntlrId(), "da1's secondary pushed before its primary was ready")
			}
		}
	}
}

// A DA whose primary never got ready has its secondary held back; when
// the primary's node dies, that secondary is promoted all the same (its
// VDs are exported): it is pushed as the primary at the new epoch, serves,
// and no other controller waits for anything.
func TestFailoverOfNeverReadyPrimary(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	for _, a := range tc.cns {
		a.SetScript(notReadyScript())
	}
	da := tc.createDA("da0", 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	p, _ := da.Primary()
	sc := otherCntlr(da, p.ID)
	pcn, scn := tc.agent(p.CNName), tc.agent(sc.CNName)
	eventually(t, func() bool { return tc.da("da0").Status.Part(p.ID).Health == vda.HealthDegraded }, wait, 5*time.Millisecond)
	for _, r := range scn.Records() {
		require.Nil(t, specIn(r.Req, sc.ID), "the secondary pushed before its primary was ready")
	}

	scn.SetScript(nil)
	pcn.Stop()
	eventually(t, func() bool { return tc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	eventually(t, func() bool {
		c := specIn(scn.LastApplied(), sc.ID)
		return c != nil && c.GetPrimary() && c.GetEpoch() == 2 && len(c.GetExps()) == 1
	}, wait, 5*time.Millisecond, "the secondary was not promoted")
	eventually(t, func() bool {
		exp, err := tc.c.GetExporter(ctx, "da0", "exp0")
		port, _ := portOf(&exp, sc.Idx)
		return err == nil && readyAt(exp.Status, port.ID, 2) && tc.da("da0").Initialized
	}, wait, 5*time.Millisecond, "the promoted controller does not serve")
}

// specIn returns the spec of controller id in req's state, nil if none.
func specIn(req *agentpb.SyncRequest, id string) *agentpb.CntlrSpec {
	for _, c := range req.GetCn().GetCntlrs() {
		if c.GetCntlrId() == id {
			return c
		}
	}
	return nil
}

// A primary that dies after its array was marked initialized but before it
// admitted the host: its secondary attached the export made for the
// secondaries and re-exports it to the host meanwhile, the host writes
// through the secondary, and once the primary's node is killed the
// secondary is promoted, finds the lvstore (the array is initialized) and
// serves every acknowledged write (real agents on the fake SPDK).
func TestRealPrimaryDiesBeforeAdmittingTheHost(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 2)
	for _, n := range rc.cns {
		// Each node's first nvmf_subsystem_add_host goes through (a
		// primary's admits its secondary, a secondary's the host); the
		// next (the primary admitting the host after the mark) never
		// answers.
		n.SPDK.Inject("nvmf_subsystem_add_host", spdktest.Fault{Times: 1})
		n.SPDK.Inject("nvmf_subsystem_add_host", spdktest.Fault{Hang: true})
	}
	da := rc.createDA("da0", 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	p, _ := da.Primary()
	sc := otherCntlr(da, p.ID)
	primary, secondary := rc.node(p.CNName), rc.node(sc.CNName)
	eventually(t, func() bool {
		exp, err := rc.c.GetExporter(ctx, "da0", "exp0")
		if err != nil {
			return false
		}
		pport, _ := portOf(&exp, p.Idx)
		sport, _ := portOf(&exp, sc.Idx)
		return rc.da("da0").Initialized && readyAt(exp.Status, sport.ID, 1) && !readyAt(exp.Status, pport.ID, 1)
	}, wait, 5*time.Millisecond, "the secondary does not serve before the primary admits the host")
	secondary.SPDK.ClearFaults() // its promotion admits the old primary's controller as a host
	_, err := rc.dialExport(primary, "da0")
	require.Error(t, err, "the primary admitted the host")

	conn, err := rc.dialExport(secondary, "da0")
	require.NoError(t, err)
	w := startWriter(conn)
	eventually(t, func() bool { return w.count() >= 100 }, wait, time.Millisecond)
	primary.kill()
	acked := w.finish()
	require.NotEmpty(t, acked)

	eventually(t, func() bool { return rc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	now, _ := rc.da("da0").Primary()
	require.Equal(t, sc.ID, now.ID)
	eventually(t, func() bool { return secondary.anaOptimized(expNQN(t, "da0")) }, 60*time.Second, 10*time.Millisecond)
	conn2, err := rc.dialExport(secondary, "da0")
	require.NoError(t, err)
	verify(t, conn2, acked)
}
