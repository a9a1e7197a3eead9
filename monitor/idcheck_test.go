package monitor

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
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
