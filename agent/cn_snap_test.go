package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// cnVols is the snapshot and clone part of a cnCluster's desired state,
// with the exporters of those volumes.
type cnVols struct {
	snaps  []string
	clones []*agentpb.CloneSpec
	exps   []*cnVolExp
}

type cnVolExp struct {
	id, snapID, cloneID string
	nqn                 nvmeof.NQN
	ports               []string // by controller index
}

func newCNVolExp(t testing.TB, cl *cnCluster, name, snapID, cloneID string) *cnVolExp {
	nqn, err := nvmeof.ExpNQN("da0", name)
	require.NoError(t, err)
	x := &cnVolExp{id: nvmeof.NewID(), snapID: snapID, cloneID: cloneID, nqn: nqn}
	for range cl.cns {
		x.ports = append(x.ports, nvmeof.NewID())
	}
	return x
}

// state is controller i's desired state with v added, as the monitor
// builds it: volumes and the volume of each exporter on the primary only.
func (v *cnVols) state(cl *cnCluster, i int) *agentpb.CnState {
	c := cl.cntlrSpec(i)
	primary := i == cl.primary
	for _, x := range v.exps {
		e := &agentpb.ExpSpec{Id: x.id, PortId: x.ports[i], Nqn: string(x.nqn), InitiatorNqn: string(cl.initiator)}
		if primary {
			e.SnapId, e.CloneId = x.snapID, x.cloneID
			e.SecondaryHostNqns = c.Exps[0].GetSecondaryHostNqns()
		}
		c.Exps = append(c.Exps, e)
	}
	if primary {
		for _, id := range v.snaps {
			c.Snaps = append(c.Snaps, &agentpb.SnapSpec{Id: id})
		}
		c.Clones = v.clones
	}
	return &agentpb.CnState{Cntlrs: []*agentpb.CntlrSpec{c}}
}

// syncAll syncs the primary, then every live secondary until it is OK (its
// path to a primary that restarted reconnects by itself).
func (v *cnVols) syncAll(cl *cnCluster) {
	cl.t.Helper()
	cl.cns[cl.primary].syncCNOK(v.state(cl, cl.primary))
	for i, cn := range cl.cns {
		if i == cl.primary || cl.down[i] {
			continue
		}
		var last []*agentpb.ObjectStatus
		require.Eventually(cl.t, func() bool {
			last = cn.syncCN(v.state(cl, i))
			for _, o := range last {
				if !o.GetOk() {
					return false
				}
			}
			return true
		}, 30*time.Second, 10*time.Millisecond, "controller %d: %v", i, last)
	}
}

func (e *cnNodeEnv) lvolBdev(alias string) *spdk.Bdev {
	e.t.Helper()
	bs, err := e.c.BdevGetBdevs(context.Background(), spdk.BdevGetBdevsParams{Name: alias})
	if err != nil {
		require.ErrorIs(e.t, err, spdk.ErrNotFound)
		return nil
	}
	require.Len(e.t, bs, 1)
	return &bs[0]
}

func dialExp(t testing.TB, cl *cnCluster, i int, nqn nvmeof.NQN) *fabric.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := fabric.Dial(ctx, cl.cns[i].tcpTrid(), string(nqn), string(cl.initiator))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// A snapshot is taken once on the primary, under writes, and found again by
// its name after an SPDK restart and after a failover (no second
// bdev_lvol_snapshot); exported read-only it shows what the volume held
// when it was taken; once the spec drops it the primary deletes its lvol.
func TestCNSnapshotTakenFoundAgainExportedAndDeleted(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	before := cnPattern(256<<10, 0x11)
	cnWrite(t, cl.host(0), before)

	snapID := nvmeof.NewID()
	v := &cnVols{snaps: []string{snapID}}
	p := cl.cns[0]
	p.fake.ResetCounts()
	out := p.syncCNOK(v.state(cl, 0))
	require.True(t, cnStatus(t, out, agentpb.Kind_KIND_SNAP, snapID).GetOk())
	require.Equal(t, 1, p.fake.RPCCount("bdev_lvol_snapshot"))
	alias := nvmeof.LvolAlias(nvmeof.DALvstoreName(cl.daID), nvmeof.SnapLvolName(snapID))
	sb := p.lvolBdev(alias)
	require.NotNil(t, sb)
	require.True(t, sb.DriverSpecific.Lvol.Snapshot)

	after := cnPattern(256<<10, 0x22)
	cnWrite(t, cl.host(0), after)

	p.fake.ResetCounts()
	p.syncCNOK(v.state(cl, 0))
	require.Empty(t, p.mutations(), "a converged primary changes nothing")

	// Restart (kill -9): re-assembled, examine brings the snapshot back.
	p.restart()
	p.fake.ResetCounts()
	out = p.syncCN(v.state(cl, 0))
	require.True(t, cnStatus(t, out, agentpb.Kind_KIND_SNAP, snapID).GetOk(), "%v", out)
	require.Zero(t, p.fake.RPCCount("bdev_lvol_snapshot"), "found again, not taken again")
	require.Equal(t, sb.UUID, p.lvolBdev(alias).UUID)

	// Export it read-only through the primary and the secondary.
	x := newCNVolExp(t, cl, "snapexp", snapID, "")
	v.exps = append(v.exps, x)
	v.syncAll(cl)
	for i := range cl.cns {
		h := dialExp(t, cl, i, x.nqn)
		require.True(t, bytes.Equal(before, cnRead(t, h, len(before))), "controller %d: the snapshot holds the data before it", i)
		_, err := h.WriteAt(1, after[:4096], 0)
		require.Error(t, err, "controller %d: a snapshot is read-only", i)
	}
	require.True(t, bytes.Equal(after, cnRead(t, cl.host(0), len(after))), "the volume has moved on")

	// Failover: the new primary finds it in the same lvstore.
	cl.cns[0].fake.Crash()
	cl.down[0] = true
	cl.cns[1].fake.ResetCounts()
	cl.primary, cl.epoch = 1, cl.epoch+1
	cl.syncDNs()
	v.syncAll(cl)
	s := cl.cns[1]
	require.Zero(t, s.fake.RPCCount("bdev_lvol_snapshot"), "found again after failover")
	require.True(t, bytes.Equal(before, cnRead(t, dialExp(t, cl, 1, x.nqn), len(before))))

	// Dropped from the spec (exporter first, as the portal insists): the
	// primary deletes the snapshot, never the DA lvol.
	v.exps, v.snaps = nil, nil
	s.fake.ResetCounts()
	s.allowedLvolDeletes = 1
	s.syncCNOK(v.state(cl, 1))
	require.Equal(t, 1, s.fake.RPCCount("bdev_lvol_delete"))
	require.Nil(t, s.lvolBdev(alias))
	require.NotNil(t, s.lvolBdev(nvmeof.LvolAlias(nvmeof.DALvstoreName(cl.daID), nvmeof.DALvolName(cl.daID))))
	require.True(t, bytes.Equal(after, cnRead(t, cl.host(1), len(after))), "the volume kept its data")
}

// A clone is writable, leaves its snapshot unchanged, grows and inflates as
// asked, and goes (before its snapshot) when the spec drops both.
func TestCNCloneWritesResizeInflate(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	before := cnPattern(128<<10, 0x33)
	cnWrite(t, cl.host(0), before)
	snapID, cloneID := nvmeof.NewID(), nvmeof.NewID()
	clone := &agentpb.CloneSpec{Id: cloneID, SnapId: snapID}
	v := &cnVols{snaps: []string{snapID}, clones: []*agentpb.CloneSpec{clone}}
	sx, cx := newCNVolExp(t, cl, "snapexp", snapID, ""), newCNVolExp(t, cl, "cloneexp", "", cloneID)
	v.exps = []*cnVolExp{sx, cx}
	v.syncAll(cl)
	p := cl.cns[0]
	lvs := nvmeof.DALvstoreName(cl.daID)
	cloneAlias := nvmeof.LvolAlias(lvs, nvmeof.CloneLvolName(cloneID))
	cb := p.lvolBdev(cloneAlias)
	require.NotNil(t, cb)
	require.True(t, cb.DriverSpecific.Lvol.Clone)
	require.Equal(t, uint64(cnTestDABytes), cb.SizeBytes())

	ch := dialExp(t, cl, 0, cx.nqn)
	require.True(t, bytes.Equal(before, cnRead(t, ch, len(before))), "a clone starts as its snapshot")
	mine := cnPattern(64<<10, 0x44)
	cnWrite(t, ch, mine)
	require.True(t, bytes.Equal(mine, cnRead(t, dialExp(t, cl, 1, cx.nqn), len(mine))), "written, seen through the secondary")
	require.True(t, bytes.Equal(before, cnRead(t, dialExp(t, cl, 0, sx.nqn), len(before))), "the snapshot is unchanged")
	require.True(t, bytes.Equal(before, cnRead(t, cl.host(0), len(before))), "the volume is unchanged")

	clone.SizeBytes, clone.Inflate = 2*cnTestDABytes, true
	p.fake.ResetCounts()
	out := p.syncCNOK(v.state(cl, 0))
	require.True(t, cnStatus(t, out, agentpb.Kind_KIND_CLONE, cloneID).GetOk())
	require.Equal(t, 1, p.fake.RPCCount("bdev_lvol_resize"))
	require.Equal(t, 1, p.fake.RPCCount("bdev_lvol_inflate"))
	cb = p.lvolBdev(cloneAlias)
	require.Equal(t, uint64(2*cnTestDABytes), cb.SizeBytes())
	require.False(t, cb.DriverSpecific.Lvol.Clone, "inflated: no longer depends on the snapshot")
	require.True(t, bytes.Equal(mine, cnRead(t, ch, len(mine))), "the clone kept its data")
	p.fake.ResetCounts()
	p.syncCNOK(v.state(cl, 0))
	require.Empty(t, p.mutations())

	v.exps, v.snaps, v.clones = v.exps[:0], nil, nil
	p.fake.ResetCounts()
	p.allowedLvolDeletes = 2
	p.syncCNOK(v.state(cl, 0))
	require.Equal(t, 2, p.fake.RPCCount("bdev_lvol_delete"))
	require.Nil(t, p.lvolBdev(cloneAlias))
	require.Nil(t, p.lvolBdev(nvmeof.LvolAlias(lvs, nvmeof.SnapLvolName(snapID))))
}

// A secondary never touches lvols, even when its spec names snapshots and
// clones; and a primary deletes only VDA snapshot and clone lvols, never a
// DA lvol or a foreign one.
func TestCNVolumesOnlyOnThePrimaryAndOnlyTheirKinds(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	snapID := nvmeof.NewID()
	v := &cnVols{snaps: []string{snapID}, clones: []*agentpb.CloneSpec{{Id: nvmeof.NewID(), SnapId: snapID}}}
	st := v.state(cl, 1)
	st.Cntlrs[0].Snaps, st.Cntlrs[0].Clones = v.state(cl, 0).Cntlrs[0].Snaps, v.clones
	s := cl.cns[1]
	s.fake.ResetCounts()
	out := s.syncCN(st)
	require.Empty(t, s.mutations(), "a secondary acts on no volume")
	for _, o := range out {
		require.NotEqual(t, agentpb.Kind_KIND_SNAP, o.GetKind(), "a secondary reports no snapshot")
	}

	ctx := context.Background()
	p := cl.cns[0]
	lvs := nvmeof.DALvstoreName(cl.daID)
	for _, name := range []string{nvmeof.DALvolName(nvmeof.NewID()), "user-lvol"} {
		_, err := p.c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{LvolName: name, LvsName: lvs, SizeInMiB: new(uint64(1)),
			ThinProvision: new(true)})
		require.NoError(t, err)
	}
	orphan, err := p.c.BdevLvolSnapshot(ctx, spdk.BdevLvolSnapshotParams{
		LvolName: nvmeof.LvolAlias(lvs, nvmeof.DALvolName(cl.daID)), SnapshotName: nvmeof.SnapLvolName(nvmeof.NewID())})
	require.NoError(t, err)
	p.fake.ResetCounts()
	p.allowedLvolDeletes = 1
	p.syncCNOK(v.state(cl, 0))
	require.Nil(t, p.lvolBdev(orphan), "the orphan snapshot went")
	require.Equal(t, 1, p.fake.RPCCount("bdev_lvol_delete"))
	ls, err := p.c.BdevLvolGetLvols(ctx, spdk.BdevLvolGetLvolsParams{LvsName: lvs})
	require.NoError(t, err)
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	require.Contains(t, names, nvmeof.DALvolName(cl.daID))
	require.Contains(t, names, "user-lvol")
	require.Len(t, names, 5, "DA lvol, foreign DA-named lvol, user lvol, snapshot, clone: %v", names)
}

// A malformed volume is refused alone; a clone whose snapshot is missing
// waits.
func TestCNVolumeSpecErrors(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	good, dup := nvmeof.NewID(), nvmeof.NewID()
	v := &cnVols{snaps: []string{good, dup, dup, "NOT-AN-ID"},
		clones: []*agentpb.CloneSpec{{Id: nvmeof.NewID(), SnapId: nvmeof.NewID()}, {Id: nvmeof.NewID(), SnapId: good, SizeBytes: 1000}}}
	out := cl.cns[0].syncCN(v.state(cl, 0))
	require.True(t, cnStatus(t, out, agentpb.Kind_KIND_SNAP, good).GetOk())
	require.Contains(t, cnStatus(t, out, agentpb.Kind_KIND_SNAP, dup).GetError(), "listed 2 times")
	require.Contains(t, cnStatus(t, out, agentpb.Kind_KIND_SNAP, "NOT-AN-ID").GetError(), "invalid")
	require.Contains(t, cnStatus(t, out, agentpb.Kind_KIND_CLONE, v.clones[0].Id).GetError(), "not there")
	require.Contains(t, cnStatus(t, out, agentpb.Kind_KIND_CLONE, v.clones[1].Id).GetError(), "multiple of")
	require.True(t, cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0]).GetOk(), "the array itself is fine")
}

// A demoted primary takes the namespaces of exported snapshots and clones
// off its exports before it unloads the array, like the DA lvol's: no host
// I/O may reach the raid while its lvstore unloads (ARCHITECTURE section 8).
func TestCNDemotionUnexportsSnapshotsFirst(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	old := newRecordedCNEnv(t)
	cl.cns[0] = old
	cl.build()
	before := cnPattern(128<<10, 0x55)
	cnWrite(t, cl.host(0), before)
	snapID, cloneID := nvmeof.NewID(), nvmeof.NewID()
	v := &cnVols{snaps: []string{snapID}, clones: []*agentpb.CloneSpec{{Id: cloneID, SnapId: snapID}}}
	sx, cx := newCNVolExp(t, cl, "snapexp", snapID, ""), newCNVolExp(t, cl, "cloneexp", "", cloneID)
	v.exps = []*cnVolExp{sx, cx}
	v.syncAll(cl)
	sh := dialExp(t, cl, 0, sx.nqn)
	require.True(t, bytes.Equal(before, cnRead(t, sh, len(before))))

	old.rec.take()
	cl.primary, cl.epoch = 1, cl.epoch+1
	cl.syncDNs()
	v.syncAll(cl)
	reqs := cnMutating(old.rec.take())
	raidAt := cnIndex(reqs, "bdev_raid_delete", nvmeof.RaidName(cl.daID))
	require.GreaterOrEqual(t, raidAt, 0, "%v", cnMethods(reqs))
	removed := map[string]int{}
	for i, q := range reqs {
		if q.Method != "nvmf_subsystem_remove_ns" {
			continue
		}
		var p struct {
			NQN string `json:"nqn"`
		}
		require.NoError(t, json.Unmarshal(q.Params, &p))
		removed[p.NQN] = i
	}
	for _, nqn := range []nvmeof.NQN{sx.nqn, cx.nqn} {
		at, ok := removed[string(nqn)]
		require.True(t, ok, "%s: its namespace was never taken off: %v", nqn, cnMethods(reqs))
		require.Less(t, at, raidAt, "%s: namespace taken off after the raid went", nqn)
	}
	require.Empty(t, old.fake.Crashes())
	// The new primary serves the snapshot; the demoted one proxies it.
	for i := range cl.cns {
		require.True(t, bytes.Equal(before, cnRead(t, dialExp(t, cl, i, sx.nqn), len(before))), "controller %d", i)
	}
}
