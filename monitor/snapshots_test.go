package monitor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/store"
)

func cntlrOf(t testing.TB, plan *Plan, cn string) *agentpb.CntlrSpec {
	t.Helper()
	np := nodeByName(t, plan, cn)
	require.NotNil(t, np.Request, "%s held: %v", cn, np.Held)
	cs := np.Request.GetCn().GetCntlrs()
	require.Len(t, cs, 1)
	return cs[0]
}

// Snapshots and clones go to the primary only, with the volume of each
// exporter; secondaries get neither.
func TestPlanSnapshotsAndClones(t *testing.T) {
	f := newFixture(t, 2)
	ctx := context.Background()
	snap, err := f.c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "s0"})
	require.NoError(t, err)
	cl, err := f.c.CreateClone(ctx, vda.CloneSpec{DAName: "da0", Name: "c0", SnapName: "s0"})
	require.NoError(t, err)
	cl, err = f.c.ModifyClone(ctx, "da0", "c0", vda.CloneUpdate{Inflate: true})
	require.NoError(t, err)
	es, err := f.c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "es", InitiatorNQN: "nqn.2016-06.io.spdk:host0", SnapName: "s0"})
	require.NoError(t, err)
	ec, err := f.c.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "ec", InitiatorNQN: "nqn.2016-06.io.spdk:host0", CloneName: "c0"})
	require.NoError(t, err)

	s, plan := f.plan(t)
	require.Empty(t, plan.Problems)
	primary, _ := f.da.Primary()
	p := cntlrOf(t, plan, primary.CNName)
	require.Len(t, p.GetSnaps(), 1)
	require.Equal(t, snap.ID, p.GetSnaps()[0].GetId())
	require.Len(t, p.GetClones(), 1)
	require.Equal(t, cl.ID, p.GetClones()[0].GetId())
	require.Equal(t, snap.ID, p.GetClones()[0].GetSnapId())
	require.Equal(t, cl.SizeBytes, p.GetClones()[0].GetSizeBytes())
	require.True(t, p.GetClones()[0].GetInflate())
	vols := map[string][2]string{}
	for _, e := range p.GetExps() {
		vols[e.GetId()] = [2]string{e.GetSnapId(), e.GetCloneId()}
	}
	require.Equal(t, [2]string{snap.ID, ""}, vols[es.ID])
	require.Equal(t, [2]string{"", cl.ID}, vols[ec.ID])
	require.Equal(t, [2]string{"", ""}, vols[f.exp.ID], "the DA's own volume")
	for _, c := range f.da.Cntlrs {
		if c.ID == primary.ID {
			continue
		}
		sec := cntlrOf(t, plan, c.CNName)
		require.Empty(t, sec.GetSnaps())
		require.Empty(t, sec.GetClones())
		for _, e := range sec.GetExps() {
			require.Empty(t, e.GetSnapId(), "a secondary re-exports the primary's subsystem")
			require.Empty(t, e.GetCloneId())
		}
	}

	// The primary's reports become the objects' status; a secondary's
	// are ignored.
	np := nodeByName(t, plan, primary.CNName)
	edits, _ := reportEdits(s, np, &agentpb.SyncReply{Objects: []*agentpb.ObjectStatus{
		{Kind: agentpb.Kind_KIND_SNAP, Id: snap.ID, Ok: true},
		{Kind: agentpb.Kind_KIND_CLONE, Id: cl.ID, Error: "agent: not ready: inflating"},
	}})
	require.Len(t, edits, 2)
	got := map[string]vda.Status{}
	for _, e := range edits {
		var st vda.Status
		e.edit(&st)
		got[e.specKey] = st
	}
	require.Equal(t, vda.HealthHealthy, got[vda.KeySnap("da0", "s0")].Health)
	require.Equal(t, vda.HealthDegraded, got[vda.KeyClone("da0", "c0")].Health)
	require.Contains(t, got[vda.KeyClone("da0", "c0")].ErrorMsg, "inflating")
	for _, c := range f.da.Cntlrs {
		if c.ID != primary.ID {
			edits, _ := reportEdits(s, nodeByName(t, plan, c.CNName), &agentpb.SyncReply{Objects: []*agentpb.ObjectStatus{
				{Kind: agentpb.Kind_KIND_SNAP, Id: snap.ID, Ok: true}}})
			require.Empty(t, edits, "a secondary holds no snapshot")
		}
	}
}

// A malformed snapshot or clone holds the DA's controller nodes: a push
// would make the primary delete the lvol the state no longer names.
func TestPlanMalformedVolumeHoldsTheCNs(t *testing.T) {
	f := newFixture(t, 2)
	ctx := context.Background()
	_, err := f.c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da0", Name: "s0"})
	require.NoError(t, err)
	_, err = f.c.CreateClone(ctx, vda.CloneSpec{DAName: "da0", Name: "c0", SnapName: "s0"})
	require.NoError(t, err)
	base, err := f.s.List(ctx, vda.Prefix, store.ListOptions{})
	require.NoError(t, err)
	for _, key := range []string{vda.KeySnap("da0", "s0"), vda.KeyClone("da0", "c0")} {
		for _, bad := range [][]byte{[]byte(`{not json`), []byte(`{"id":"x","name":"s0","da_name":"da0"}`)} {
			kvs := append([]store.KV(nil), base.KVs...)
			for i := range kvs {
				if kvs[i].Key == key {
					kvs[i].Value = bad
				}
			}
			plan := Build(DecodeSnapshot(base.Revision, kvs))
			require.NotEmpty(t, plan.Problems, key)
			for _, np := range plan.Nodes {
				isCN := np.Role == RoleCN && (np.Name == f.da.Cntlrs[0].CNName || np.Name == f.da.Cntlrs[1].CNName)
				require.Equal(t, isCN, np.Held != nil, "%s %s: node %s held: %v", key, bad, np.Name, np.Held)
			}
		}
	}
}
