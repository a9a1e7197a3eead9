package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// requireSamePlan fails unless got plans what want plans: the same nodes,
// holds, problems and requests.
func requireSamePlan(t testing.TB, want, got *Plan, where string) {
	t.Helper()
	require.Equal(t, want.Revision, got.Revision, where)
	require.Equal(t, problemStrings(want.Problems), problemStrings(got.Problems), where)
	require.Equal(t, slices.Sorted(maps.Keys(want.Nodes)), slices.Sorted(maps.Keys(got.Nodes)), where)
	for id, w := range want.Nodes {
		g := got.Nodes[id]
		require.Equal(t, fmt.Sprint(w.Held), fmt.Sprint(g.Held), where)
		require.Equal(t, *w, NodePlan{ID: g.ID, Name: g.Name, Address: g.Address, Role: g.Role, Key: g.Key, AgentID: g.AgentID,
			Request: w.Request, Held: w.Held}, where)
		require.True(t, proto.Equal(w.Request, g.Request), "node %s: %s\nwant %v\ngot  %v", w.Name, where,
			w.Request, g.Request)
	}
}

// The incremental plan equals a full Build of the same snapshot after
// every sequence of random writes (of the snapshot cache's pool: valid,
// foreign and malformed values of every kind), with snapshots taken after
// one or several writes, as a monitor's rounds take them.
func TestPlannerMatchesBuild(t *testing.T) {
	p := newKVPool(t)
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(4, seed))
	reused := 0
	for run := range 30 {
		st := newState()
		for _, key := range p.keys { // start from the whole cluster
			if v := p.valid[key]; v != nil {
				st.apply(store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: v, ModRevision: 1, Version: 1}})
			}
		}
		var pl Planner
		for rev := int64(2); rev <= 120; rev++ {
			for _, op := range p.ops(r) {
				typ := store.EventPut
				if op.Delete {
					typ = store.EventDelete
				}
				st.apply(store.Event{Type: typ, KV: store.KV{Key: op.Key, Value: op.Value, ModRevision: rev, Version: 1}})
			}
			if r.IntN(3) == 0 {
				continue // several writes in one round
			}
			snap, _ := st.view()
			prev := pl.states
			// A full plan with the Planner's memory of what it planned
			// (see admission): a Build from the store alone may hold back
			// a secondary the Planner already planned.
			want, _, _ := build(snap, prev, nil, nil, nil, nil)
			got := pl.Build(snap)
			requireSamePlan(t, want, got, fmt.Sprintf("seed %d, run %d, revision %d", seed, run, rev))
			for k, s := range pl.states {
				if old, ok := prev[k]; ok && old == s {
					reused++
				}
			}
		}
	}
	require.Positive(t, reused, "no state was ever reused")
}

// A round whose snapshot changed nothing a node's state is made of (a
// CN's location) reuses every state, and the requests carry the new
// revision as their generation.
func TestPlannerReusesUnchanged(t *testing.T) {
	f := newFixture(t, 3)
	res, err := f.s.List(context.Background(), vda.Prefix, store.ListOptions{})
	require.NoError(t, err)
	st := newState()
	for _, kv := range res.KVs {
		st.apply(store.Event{Type: store.EventPut, KV: kv})
	}
	snap1, _ := st.view()
	var pl Planner
	plan1 := pl.Build(snap1)

	cnKey := vda.KeyCN(f.da.Cntlrs[0].CNName)
	cn := st.cns.m[f.da.Cntlrs[0].CNName].Spec
	cn.Location = "elsewhere"
	v, err := json.Marshal(cn)
	require.NoError(t, err)
	rev := snap1.Revision + 1
	st.apply(store.Event{Type: store.EventPut, KV: store.KV{Key: cnKey, Value: v, ModRevision: rev, Version: 2}})
	snap2, _ := st.view()
	plan2 := pl.Build(snap2)
	requireSamePlan(t, Build(snap2), plan2, "location")
	require.NotEmpty(t, plan2.Nodes)
	for id, np := range plan2.Nodes {
		require.NotNil(t, np.Request, "node %s", np.Name)
		old := plan1.Nodes[id].Request
		require.Equal(t, rev, np.Request.GetGeneration())
		require.Equal(t, rev, np.Request.GetStoreRevision())
		if np.Role == RoleDN {
			require.Same(t, old.GetDn(), np.Request.GetDn(), "node %s rebuilt", np.Name)
		} else {
			require.Same(t, old.GetCn(), np.Request.GetCn(), "node %s rebuilt", np.Name)
		}
	}

	// Its listener is part of the other CNs' states: they are rebuilt.
	cn.Listener.TrSvcID = "4999"
	v, err = json.Marshal(cn)
	require.NoError(t, err)
	st.apply(store.Event{Type: store.EventPut, KV: store.KV{Key: cnKey, Value: v, ModRevision: rev + 1, Version: 3}})
	snap3, _ := st.view()
	plan3 := pl.Build(snap3)
	requireSamePlan(t, Build(snap3), plan3, "listener")
	rebuilt := 0
	for id, np := range plan3.Nodes {
		if np.Role == RoleCN && np.Request.GetCn() != plan2.Nodes[id].Request.GetCn() {
			rebuilt++
		}
	}
	require.Equal(t, 3, rebuilt, "every CN of the DA rebuilt")
}
