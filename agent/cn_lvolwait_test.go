package agent

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// An initialized array whose lvstore is gone waits cnLvolWait for its lvol
// on the first sync only; later syncs look it up without waiting (and still
// report it missing, never creating one), until its spec changes (a new
// epoch) or its lvol shows up.
func TestCNMissingLvstoreWaitsForItsLvolOnce(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 1)
	cl.syncDNs()
	cl.initialized = true // VDs that never held an lvstore: it is missing
	p := cl.cns[0]
	p.record()
	lvsName := nvmeof.DALvstoreName(cl.daID)
	alias := nvmeof.LvolAlias(lvsName, nvmeof.DALvolName(cl.daID))
	// lookups returns how many bdev_get_bdevs of the DA lvol waited for it
	// and how many did not, since the last call.
	lookups := func() (long, short int) {
		t.Helper()
		for _, q := range p.rec.take() {
			var prm spdk.BdevGetBdevsParams
			if q.Method != "bdev_get_bdevs" || json.Unmarshal(q.Params, &prm) != nil || prm.Name != alias {
				continue
			}
			if prm.TimeoutMS == 0 {
				short++
				continue
			}
			require.Equal(t, uint64(cnLvolWait.Milliseconds()), prm.TimeoutMS)
			long++
		}
		return long, short
	}
	// missing syncs and requires the array reported: not ready by the sync
	// that assembles its raid (examine not waited out), missing after.
	missing := func(assembles bool) {
		t.Helper()
		out := p.syncCN(cl.cnState(0))
		st := cnStatus(t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0])
		require.False(t, st.GetOk())
		want := errCNLvstoreMissing
		if assembles {
			want = errCNNotReady
		}
		require.Contains(t, st.GetError(), want.Error())
	}
	requireLookups := func(wantLong int, what string) {
		t.Helper()
		long, short := lookups()
		require.Equal(t, wantLong, long, "%s: lvol waits", what)
		if wantLong == 0 {
			require.Positive(t, short, "%s: the lvol is still looked up", what)
		}
	}

	missing(true)
	requireLookups(1, "first sync")
	for i := range 2 {
		missing(false) // looks twice: before and after re-assembling the raid
		requireLookups(0, "sync after the miss")
		require.Zero(t, p.fake.RPCCount("bdev_lvol_create_lvstore"), "sync %d", i)
	}

	// A new epoch is a new spec: its first sync waits again, once.
	cl.epoch++
	cl.syncDNs()
	missing(true)
	requireLookups(1, "first sync of the new epoch")
	missing(false)
	requireLookups(0, "second sync of the new epoch")

	// The lvstore and its lvol appear (made here behind the agent's back):
	// the listing shows the lvol, the array is served, the record dropped.
	ctx := context.Background()
	raid := nvmeof.RaidName(cl.daID)
	_, err := p.c.BdevLvolCreateLvstore(ctx, spdk.BdevLvolCreateLvstoreParams{BdevName: raid, LvsName: lvsName,
		ClusterSz: cnTestCluster, ClearMethod: "none"})
	require.NoError(t, err)
	_, err = p.c.BdevLvolCreate(ctx, spdk.BdevLvolCreateParams{LvolName: nvmeof.DALvolName(cl.daID), LvsName: lvsName,
		ThinProvision: new(true), SizeInMiB: new(uint64(cnTestDABytes >> 20))})
	require.NoError(t, err)
	p.syncCNOK(cl.cnState(0))
	lookups()

	// So once the raid is gone (unloaded behind the agent's back), its
	// re-assembly waits for the lvol again, and finds it.
	require.NoError(t, p.c.BdevRaidDelete(ctx, spdk.NameParams{Name: raid}))
	p.syncCNOK(cl.cnState(0))
	long, short := lookups()
	require.Equal(t, 1, long, "the lvol showed up: waited for again")
	require.Zero(t, short)
}

// cnLvolMisses forgets an array whose spec changed where its lvstore is
// found, that is no longer a primary here, or whose lvol is listed; it
// keeps one whose other parts changed.
func TestCNLvolMissesBegin(t *testing.T) {
	c := &cnCntlr{daID: "da", primary: true, epoch: 2, stripKB: 64, cluster: 1 << 20,
		vds: []cnVD{{id: "vd0"}, {id: "vd1"}}}
	empty := &cnSnapshot{bdevs: map[string]*spdk.Bdev{}}
	alias := nvmeof.LvolAlias(nvmeof.DALvstoreName("da"), nvmeof.DALvolName("da"))
	cases := []struct {
		name   string
		change func(c *cnCntlr, s *cnSnapshot)
		kept   bool
	}{
		{"unchanged", func(*cnCntlr, *cnSnapshot) {}, true},
		{"other exporters", func(c *cnCntlr, _ *cnSnapshot) { c.exps = []*cnExp{{id: "x"}} }, true},
		{"epoch", func(c *cnCntlr, _ *cnSnapshot) { c.epoch++ }, false},
		{"members", func(c *cnCntlr, _ *cnSnapshot) { c.vds = []cnVD{{id: "vd1"}, {id: "vd0"}} }, false},
		{"strip", func(c *cnCntlr, _ *cnSnapshot) { c.stripKB = 128 }, false},
		{"cluster", func(c *cnCntlr, _ *cnSnapshot) { c.cluster = 4 << 20 }, false},
		{"secondary now", func(c *cnCntlr, _ *cnSnapshot) { c.primary = false }, false},
		{"invalid spec", func(c *cnCntlr, _ *cnSnapshot) { c.err = errCNSpec }, false},
		{"lvol listed", func(_ *cnCntlr, s *cnSnapshot) { s.bdevs[alias] = &spdk.Bdev{Name: "u"} }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r cnLvolMisses
			r.miss(c)
			require.True(t, r.missed(c))
			cc := *c
			snap := &cnSnapshot{bdevs: map[string]*spdk.Bdev{}}
			tc.change(&cc, snap)
			r.begin([]*cnCntlr{&cc}, snap)
			require.Equal(t, tc.kept, r.missed(c) || r.missed(&cc))
		})
	}
	var r cnLvolMisses
	r.miss(c)
	r.begin(nil, empty)
	require.False(t, r.missed(c), "an array no longer wanted is forgotten")
	r.miss(c)
	r.found("da")
	require.False(t, r.missed(c))
}
