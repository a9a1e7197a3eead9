package monitor

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// The check of unique IDs is reused while the PDs, DAs, exporters,
// snapshots and clones are the snapshot's same maps, and redone when one
// changes: a collision holds the DAs' nodes in every plan until it is gone,
// as a full Build does.
func TestPlannerReusesIDCheck(t *testing.T) {
	f, st, put := twoDAState(t)
	held := func(plan *Plan) int {
		n := 0
		for _, np := range plan.Nodes {
			if np.Held != nil {
				n++
			}
		}
		return n
	}
	var pl Planner
	da1 := st.das.m["da1"].Spec

	// da1's VD 0 takes da0's VD 0's ID.
	dup := da1
	dup.VDs = append([]vda.VD(nil), dup.VDs...)
	dup.VDs[0].ID = f.da.VDs[0].ID
	put(vda.KeyDA("da1"), dup)
	snap1, _ := st.view()
	require.Empty(t, snap1.Problems)
	plan1 := pl.Build(snap1)
	requireSamePlan(t, Build(snap1), plan1, "collision")
	require.Positive(t, held(plan1))
	ids := pl.ids

	// A CN's location: the same DA map, the same findings, still held.
	cnName := f.da.Cntlrs[0].CNName
	cn := st.cns.m[cnName].Spec
	cn.Location = "elsewhere"
	put(vda.KeyCN(cnName), cn)
	snap2, _ := st.view()
	plan2 := pl.Build(snap2)
	requireSamePlan(t, Build(snap2), plan2, "location")
	require.Same(t, ids, pl.ids, "the ID check was redone")
	require.Equal(t, held(plan1), held(plan2))

	// The collision repaired: checked again, nothing held.
	put(vda.KeyDA("da1"), da1)
	snap3, _ := st.view()
	plan3 := pl.Build(snap3)
	requireSamePlan(t, Build(snap3), plan3, "repaired")
	require.NotSame(t, ids, pl.ids)
	require.Zero(t, held(plan3))
}

// twoDAState is the fixture's DA and a second one, da1, decoded into a
// state as the snapshot cache holds them, with put writing a record into
// that state at the next revision.
func twoDAState(t *testing.T) (*fixture, *state, func(key string, v any)) {
	ctx := context.Background()
	f := newFixture(t, 2)
	_, err := f.c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da1", CntlrCount: 2, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	reportAll(t, f.s)
	res, err := f.s.List(ctx, vda.Prefix, store.ListOptions{})
	require.NoError(t, err)
	st := newState()
	for _, kv := range res.KVs {
		st.apply(store.Event{Type: store.EventPut, KV: kv})
	}
	rev := res.Revision
	put := func(key string, v any) {
		t.Helper()
		b, err := json.Marshal(v)
		require.NoError(t, err)
		rev++
		st.apply(store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: b, ModRevision: rev, Version: 2}})
	}
	return f, st, put
}

// With every create a round's snapshot adds DAs and exporters: the check
// of unique IDs is then extended by the IDs of what changed alone, and
// finds what a check of the whole snapshot finds: the same IDs by DA, and
// a collision (checked in full then) held in the same plan as Build's.
func TestPlannerExtendsIDCheck(t *testing.T) {
	f, st, put := twoDAState(t)
	rev := int64(1 << 40)
	del := func(key string) {
		rev++
		st.apply(store.Event{Type: store.EventDelete, KV: store.KV{Key: key, ModRevision: rev}})
	}
	var pl Planner
	snap0, _ := st.view()
	pl.Build(snap0)
	ids := pl.ids
	require.NotNil(t, ids.owner)
	requireFull := func(snap *Snapshot, what string) {
		t.Helper()
		var full Planner
		full.Build(snap)
		require.Equal(t, full.ids.byDA, pl.ids.byDA, what)
		require.Equal(t, full.ids.owner, pl.ids.owner, what)
		require.Empty(t, pl.ids.problems, what)
	}
	newDA := func(name string) vda.DiskArray {
		da := st.das.m["da1"].Spec
		da.Name, da.ID = name, nvmeof.NewID()
		da.VDs = append([]vda.VD(nil), da.VDs...)
		for i := range da.VDs {
			da.VDs[i].ID = nvmeof.NewID()
		}
		da.Cntlrs = append([]vda.Cntlr(nil), da.Cntlrs...)
		for i := range da.Cntlrs {
			da.Cntlrs[i].ID = nvmeof.NewID()
			if da.Cntlrs[i].Primary {
				da.PrimaryCntlrID = da.Cntlrs[i].ID
			}
		}
		return da
	}

	// A new DA, then its exporter: extended, not checked again.
	da2 := newDA("da2")
	put(vda.KeyDA("da2"), da2)
	snap1, _ := st.view()
	require.Empty(t, snap1.Problems)
	requireSamePlan(t, Build(snap1), pl.Build(snap1), "new DA")
	require.Same(t, ids, pl.ids)
	requireFull(snap1, "new DA")
	exp := f.exp
	exp.DAName, exp.DAID, exp.ID = "da2", da2.ID, nvmeof.NewID()
	exp.Ports = append([]vda.ExpPort(nil), exp.Ports...)
	for i := range exp.Ports {
		exp.Ports[i].ID = nvmeof.NewID()
	}
	put(vda.KeyExp("da2", exp.Name), exp)
	snap2, _ := st.view()
	requireSamePlan(t, Build(snap2), pl.Build(snap2), "new exporter")
	require.Same(t, ids, pl.ids)
	requireFull(snap2, "new exporter")
	require.Empty(t, snap2.Problems)
	require.Contains(t, pl.ids.byDA["da2"], exp.Ports[0].ID)

	// A DA deleted: its IDs go.
	del(vda.KeyExp("da2", exp.Name))
	del(vda.KeyDA("da2"))
	snap3, _ := st.view()
	requireSamePlan(t, Build(snap3), pl.Build(snap3), "deleted")
	require.Same(t, ids, pl.ids)
	requireFull(snap3, "deleted")
	require.NotContains(t, pl.ids.owner, da2.VDs[0].ID)
	require.NotContains(t, pl.ids.owner, exp.Ports[0].ID)

	// A new DA whose VD takes da0's VD's ID: checked in full, held.
	dup := newDA("da3")
	dup.VDs[0].ID = f.da.VDs[0].ID
	put(vda.KeyDA("da3"), dup)
	snap4, _ := st.view()
	plan4 := pl.Build(snap4)
	requireSamePlan(t, Build(snap4), plan4, "collision")
	require.NotSame(t, ids, pl.ids)
	require.NotEmpty(t, pl.ids.problems)
	require.Nil(t, pl.ids.owner)
	held := 0
	for _, np := range plan4.Nodes {
		if np.Held != nil {
			held++
		}
	}
	require.Positive(t, held)
}
