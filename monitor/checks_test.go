package monitor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
)

// The check of each DA's references is redone only for the DAs whose
// inputs changed, a DA change no disk node reads (its initialization)
// rebuilds only its controller nodes' states, and the check of unique IDs
// survives a failover's and an initialization's writes; every plan equals
// a full Build.
func TestPlannerReusesDAChecks(t *testing.T) {
	f, st, put := twoDAState(t)
	var pl Planner
	plan := func(what string) *Plan {
		t.Helper()
		snap, _ := st.view()
		got := pl.Build(snap)
		requireSamePlan(t, Build(snap), got, what)
		return got
	}
	states := func() map[nodeKey]nodeState {
		out := map[nodeKey]nodeState{}
		for k, v := range pl.states {
			out[k] = v
		}
		return out
	}
	da0Name := f.da.Name
	da0 := st.das.m[da0Name].Spec
	da1 := st.das.m["da1"].Spec

	// da1's VD 0 names a PD that does not exist: its nodes are held.
	broken := da1
	broken.VDs = append([]vda.VD(nil), da1.VDs...)
	broken.VDs[0].PDID = strings.Repeat("ab", 16) // no such PD
	put(vda.KeyDA("da1"), broken)
	plan("broken")
	bad := pl.checks.errs["da1"]
	require.Error(t, bad)
	require.Len(t, pl.checks.errs, 1)

	// da0 initialized: da1's check is not redone, the IDs are not checked
	// again, and only da0's CNs get new states.
	ids, before := pl.ids, states()
	init := da0
	init.Initialized = true
	put(vda.KeyDA(da0Name), init)
	plan("initialized")
	require.True(t, bad == pl.checks.errs["da1"], "da1's check was redone")
	require.Same(t, ids, pl.ids, "the ID check was redone")
	cns := map[string]bool{}
	for _, c := range da0.Cntlrs {
		cns[c.CNName] = true
	}
	for k, s := range pl.states {
		rebuilt := before[k] != s
		if k.role == RoleDN {
			require.False(t, rebuilt, "disk node %s rebuilt", k.name)
		} else if rebuilt {
			require.True(t, cns[k.name], "controller node %s rebuilt", k.name)
		}
	}
	for name := range cns {
		if _, held := pl.states[nodeKey{RoleCN, name}]; held {
			require.NotSame(t, before[nodeKey{RoleCN, name}].cn, pl.states[nodeKey{RoleCN, name}].cn)
		}
	}

	// da1 repaired: checked again, nothing held.
	put(vda.KeyDA("da1"), da1)
	p := plan("repaired")
	require.Empty(t, pl.checks.errs)
	for _, np := range p.Nodes {
		require.NoError(t, np.Held, np.Name)
	}
	// da1 initialized: its CNs keep da0's controller specs, its DNs their
	// states.
	before = states()
	init1 := da1
	init1.Initialized = true
	put(vda.KeyDA("da1"), init1)
	plan("da1 initialized")
	da0Cntlrs := map[string]bool{}
	for _, c := range da0.Cntlrs {
		da0Cntlrs[c.ID] = true
	}
	kept, rebuilt := 0, 0
	for k, s := range pl.states {
		if k.role == RoleDN {
			require.Same(t, before[k].dn, s.dn, "disk node %s rebuilt", k.name)
			continue
		}
		if before[k].cn == s.cn {
			for _, c := range s.cn.GetCntlrs() {
				require.True(t, da0Cntlrs[c.CntlrId], "controller node %s not rebuilt", k.name)
			}
			continue
		}
		prev := map[string]any{}
		for _, c := range before[k].cn.GetCntlrs() {
			prev[c.CntlrId] = c
		}
		for _, c := range s.cn.GetCntlrs() {
			if da0Cntlrs[c.CntlrId] {
				require.True(t, prev[c.CntlrId] == any(c), "da0's controller %s rebuilt", c.CntlrId)
				kept++
			} else {
				require.False(t, prev[c.CntlrId] == any(c), "da1's controller %s not rebuilt", c.CntlrId)
				require.True(t, c.Da.Initialized)
				rebuilt++
			}
		}
	}
	require.Positive(t, kept, "no controller node holds both DAs") // 4 controllers on 3 CNs
	require.Equal(t, 2, rebuilt)

	// A failover of da0 (new primary, next epoch): its DNs' states change,
	// the IDs are not checked again.
	fo := init
	fo.Cntlrs = append([]vda.Cntlr(nil), init.Cntlrs...)
	for i := range fo.Cntlrs {
		fo.Cntlrs[i].Primary = fo.Cntlrs[i].ID != init.PrimaryCntlrID
		if fo.Cntlrs[i].Primary {
			fo.PrimaryCntlrID = fo.Cntlrs[i].ID
		}
	}
	fo.Epoch++
	ids = pl.ids
	before = states()
	put(vda.KeyDA(da0Name), fo)
	plan("failover")
	require.Same(t, ids, pl.ids, "the ID check was redone")
	dn := nodeKey{RoleDN, da0.VDs[0].DNName}
	require.NotNil(t, pl.states[dn].dn)
	require.NotSame(t, before[dn].dn, pl.states[dn].dn)

}
