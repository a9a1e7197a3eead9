package monitor

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/store"
)

// reportAll writes the statuses a converged cluster's store holds: every
// controller of every DA and every port of every exporter reported healthy
// at the DA's epoch. No secondary then waits for its primary (admission).
func reportAll(t testing.TB, s store.Store) {
	t.Helper()
	ctx := context.Background()
	snap, err := LoadSnapshot(ctx, s)
	require.NoError(t, err)
	healthy := func(ids []string, epoch int64) vda.Status {
		st := vda.Status{Health: vda.HealthHealthy, Parts: map[string]vda.Status{}}
		for _, id := range ids {
			st.Parts[id] = vda.Status{Health: vda.HealthHealthy, Epoch: epoch}
		}
		return st
	}
	require.NoError(t, store.Update(ctx, s, func(tx *store.Tx) error {
		put := func(specKey string, st vda.Status) error {
			b, err := json.Marshal(st)
			tx.Put(vda.KeyStatus(specKey), b)
			return err
		}
		for _, da := range snap.DAs {
			var ids []string
			for _, c := range da.Spec.Cntlrs {
				ids = append(ids, c.ID)
			}
			if err := put(da.Key, healthy(ids, da.Spec.Epoch)); err != nil {
				return err
			}
		}
		for _, exp := range snap.Exps {
			da := snap.DAs[exp.Spec.DAName]
			if da == nil {
				continue
			}
			var ids []string
			for _, p := range exp.Spec.Ports {
				ids = append(ids, p.ID)
			}
			if err := put(exp.Key, healthy(ids, da.Spec.Epoch)); err != nil {
				return err
			}
		}
		return nil
	}))
}

// setPartStatus writes part of the status of specKey.
func setPartStatus(t testing.TB, s store.Store, specKey, part string, p vda.Status) {
	t.Helper()
	require.NoError(t, store.Update(context.Background(), s, func(tx *store.Tx) error {
		st := readStatus(tx, vda.KeyStatus(specKey))
		setPart(part, p)(&st)
		b, err := json.Marshal(st)
		tx.Put(vda.KeyStatus(specKey), b)
		return err
	}))
}

// specOf returns the spec of controller id in np's state, nil if none.
func specOf(np *NodePlan, id string) *agentpb.CntlrSpec {
	for _, c := range np.Request.GetCn().GetCntlrs() {
		if c.GetCntlrId() == id {
			return c
		}
	}
	return nil
}

// unreportedFixture is a fixture of a DA of two controllers whose DA and
// exporter statuses are gone (nothing reported yet), with its primary and
// secondary controllers and the primary's port of the exporter.
func unreportedFixture(t *testing.T) (f *fixture, primary, secondary vda.Cntlr, pport vda.ExpPort) {
	f = newFixture(t, 2)
	require.NoError(t, store.Update(context.Background(), f.s, func(tx *store.Tx) error {
		tx.Delete(vda.KeyStatus(vda.KeyDA(f.da.Name)))
		tx.Delete(vda.KeyStatus(vda.KeyExp(f.exp.DAName, f.exp.Name)))
		return nil
	}))
	primary, _ = f.da.Primary()
	secondary = otherCntlr(f.da, primary.ID)
	pport, _ = portOf(&f.exp, primary.Idx)
	return f, primary, secondary, pport
}

// A fresh DA's primary enters its node's state once every disk node
// reported its VD; a secondary controller once its primary reported the DA
// ready at the DA's epoch, and an exporter enters a secondary's spec once
// the primary reported that exporter's port healthy at the epoch: a report
// at an older epoch (before a failover) does not count.
func TestSecondaryWaitsForPrimary(t *testing.T) {
	f, primary, secondary, pport := unreportedFixture(t)
	sport, _ := portOf(&f.exp, secondary.Idx)
	check := func(what string, wantCntlr bool, wantExps int) *Plan {
		t.Helper()
		_, plan := f.plan(t)
		require.Empty(t, plan.Problems, what)
		p := specOf(nodeByName(t, plan, primary.CNName), primary.ID)
		require.NotNil(t, p, "%s: the primary is held back", what)
		require.Len(t, p.GetExps(), 1, what)
		require.Len(t, p.GetVds(), 2, what)
		s := specOf(nodeByName(t, plan, secondary.CNName), secondary.ID)
		require.Equal(t, wantCntlr, s != nil, "%s: secondary controller in its node's state", what)
		require.Len(t, s.GetExps(), wantExps, what)
		return plan
	}
	_, plan := f.plan(t)
	require.Nil(t, specOf(nodeByName(t, plan, primary.CNName), primary.ID), "the primary before its VDs")
	require.Equal(t, []string{primary.ID}, plan.waiting[primary.ID].left)
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), f.da.VDs[0].ID, vda.Status{Health: vda.HealthHealthy})
	_, plan = f.plan(t)
	require.Nil(t, specOf(nodeByName(t, plan, primary.CNName), primary.ID), "the primary before its VD 1")
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), f.da.VDs[1].ID, vda.Status{Health: vda.HealthHealthy})

	plan = check("VDs exported", false, 0)
	require.Equal(t, []string{secondary.ID}, plan.waiting[secondary.ID].left)

	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), primary.ID, vda.Status{Health: vda.HealthDegraded, ErrorMsg: "vd 0 not ready", Epoch: f.da.Epoch})
	check("primary not ready", false, 0)
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), primary.ID, vda.Status{Health: vda.HealthHealthy, Epoch: f.da.Epoch - 1})
	check("primary ready at an older epoch", false, 0)
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), primary.ID, vda.Status{Health: vda.HealthHealthy, Epoch: f.da.Epoch})
	plan = check("primary ready, not exported", true, 0)
	require.Equal(t, []string{sport.ID}, plan.waiting[secondary.ID].left)
	setPartStatus(t, f.s, vda.KeyExp(f.exp.DAName, f.exp.Name), pport.ID, vda.Status{Health: vda.HealthHealthy, Epoch: f.da.Epoch})
	plan = check("primary exported", true, 1)
	require.Empty(t, plan.waiting)
}

// What a node reported stays in its state whatever the primary reports
// now (leaving it out would tear it down): a new monitor, which has only
// the store, keeps a secondary whose node reported it; a Planner also
// keeps what it planned before its node's report was written.
func TestSecondaryNeverLeftOutAgain(t *testing.T) {
	f := newFixture(t, 2) // every part reported healthy
	primary, _ := f.da.Primary()
	secondary := otherCntlr(f.da, primary.ID)
	pport, _ := portOf(&f.exp, primary.Idx)
	sport, _ := portOf(&f.exp, secondary.Idx)

	var pl Planner
	snap, err := LoadSnapshot(context.Background(), f.s)
	require.NoError(t, err)
	require.NotNil(t, specOf(nodeByName(t, pl.Build(snap), secondary.CNName), secondary.ID))

	// The primary is not ready any more (its node says so), and the
	// secondary's parts were reported degraded: both stay.
	bad := vda.Status{Health: vda.HealthDegraded, ErrorMsg: "not ready", Epoch: f.da.Epoch}
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), primary.ID, bad)
	setPartStatus(t, f.s, vda.KeyExp(f.exp.DAName, f.exp.Name), pport.ID, bad)
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), secondary.ID, bad)
	setPartStatus(t, f.s, vda.KeyExp(f.exp.DAName, f.exp.Name), sport.ID, bad)
	_, plan := f.plan(t)
	s := specOf(nodeByName(t, plan, secondary.CNName), secondary.ID)
	require.NotNil(t, s, "a reported secondary left out")
	require.Len(t, s.GetExps(), 1, "a reported exporter left out")

	// Nothing of the secondary in the store (its node's reports not
	// written yet): a Build from the store holds it back, the Planner that
	// planned it keeps it.
	require.NoError(t, store.Update(context.Background(), f.s, func(tx *store.Tx) error {
		for _, key := range []string{vda.KeyDA(f.da.Name), vda.KeyExp(f.exp.DAName, f.exp.Name)} {
			st := readStatus(tx, vda.KeyStatus(key))
			delete(st.Parts, secondary.ID)
			delete(st.Parts, sport.ID)
			b, err := json.Marshal(st)
			tx.Put(vda.KeyStatus(key), b)
			if err != nil {
				return err
			}
		}
		return nil
	}))
	snap, plan = f.plan(t)
	require.Nil(t, specOf(nodeByName(t, plan, secondary.CNName), secondary.ID))
	got := specOf(nodeByName(t, pl.Build(snap), secondary.CNName), secondary.ID)
	require.NotNil(t, got, "the Planner left out what it planned before")
	require.Len(t, got.GetExps(), 1)
}

// A Planner whose primary or secondary waits rebuilds its node's state
// when the status (no spec) says what it waits for is ready (the VDs, the
// primary), and the snapshot cache asks for a round on that status write
// alone.
func TestPrimaryReadyAdmitsSecondary(t *testing.T) {
	f, primary, secondary, pport := unreportedFixture(t)
	next := watchedCache(t, f)
	_, snap := next()
	var pl Planner
	require.Nil(t, specOf(nodeByName(t, pl.Build(snap), primary.CNName), primary.ID))

	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), primary.ID, vda.Status{Health: vda.HealthDegraded, Epoch: f.da.Epoch})
	round, _ := next()
	require.False(t, round)
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), f.da.VDs[0].ID, vda.Status{Health: vda.HealthHealthy})
	round, _ = next()
	require.False(t, round, "one of two VDs")
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), f.da.VDs[1].ID, vda.Status{Health: vda.HealthHealthy})
	round, snap = next()
	require.True(t, round, "the VDs ready asked for no round")
	plan := pl.Build(snap)
	requireSamePlan(t, Build(snap), plan, "VDs ready")
	require.NotNil(t, specOf(nodeByName(t, plan, primary.CNName), primary.ID))
	require.Nil(t, specOf(nodeByName(t, plan, secondary.CNName), secondary.ID))
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), primary.ID, vda.Status{Health: vda.HealthHealthy, Epoch: f.da.Epoch})
	round, snap = next()
	require.True(t, round, "the primary's controller ready asked for no round")
	plan = pl.Build(snap)
	requireSamePlan(t, Build(snap), plan, "controller ready")
	require.Empty(t, specOf(nodeByName(t, plan, secondary.CNName), secondary.ID).GetExps())
	setPartStatus(t, f.s, vda.KeyDA(f.da.Name), primary.ID, vda.Status{Health: vda.HealthHealthy, Epoch: f.da.Epoch})
	round, _ = next()
	require.False(t, round, "the same ready status again")
	setPartStatus(t, f.s, vda.KeyExp(f.exp.DAName, f.exp.Name), pport.ID, vda.Status{Health: vda.HealthHealthy, Epoch: f.da.Epoch})
	round, snap = next()
	require.True(t, round, "the primary's port ready asked for no round")
	plan = pl.Build(snap)
	requireSamePlan(t, Build(snap), plan, "exported")
	require.Len(t, specOf(nodeByName(t, plan, secondary.CNName), secondary.ID).GetExps(), 1)
}

// watchedCache runs a snapshot cache over f's store until the test ends.
// The function it returns waits for the cache to apply the store's latest
// write and returns whether the cache asked for a round (on its first
// call: the first List, which always does) and the snapshot.
func watchedCache(t *testing.T, f *fixture) func() (bool, *Snapshot) {
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan bool, 100)
	c := NewSnapshotCache(f.s, SnapshotCacheConfig{OnChange: func(specs bool) { changes <- specs }})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() (bool, *Snapshot) {
		t.Helper()
		rev, err := f.s.Revision(ctx)
		require.NoError(t, err)
		snap, err := c.AtLeast(ctx, rev)
		require.NoError(t, err)
		return <-changes, snap
	}
}

func otherCntlr(da vda.DiskArray, id string) vda.Cntlr {
	for _, c := range da.Cntlrs {
		if c.ID != id {
			return c
		}
	}
	return vda.Cntlr{}
}

// A primary exports to its secondaries before its DA is marked initialized
// (and to the hosts after): the exporter enters a secondary's spec once
// the DA is initialized and the primary's port was reported exported to
// the secondaries at the DA's epoch, whichever of the two the store shows
// last; the port's report alone asks for a round only after the mark (the
// mark, a spec change, replans the DA itself).
func TestExportToSecondariesAdmitsThemOnceInitialized(t *testing.T) {
	for _, markFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "port first", true: "mark first"}[markFirst], func(t *testing.T) {
			f, primary, secondary, pport := unreportedFixture(t)
			ctx := context.Background()
			next := watchedCache(t, f)
			next()
			var pl Planner
			secondaryExps := func(snap *Snapshot) int {
				t.Helper()
				plan := pl.Build(snap)
				requireSamePlan(t, Build(snap), plan, "")
				s := specOf(nodeByName(t, plan, secondary.CNName), secondary.ID)
				require.NotNil(t, s)
				return len(s.GetExps())
			}
			daKey, expKey := vda.KeyDA(f.da.Name), vda.KeyExp(f.exp.DAName, f.exp.Name)
			for _, vd := range f.da.VDs {
				setPartStatus(t, f.s, daKey, vd.ID, vda.Status{Health: vda.HealthHealthy})
				next()
			}
			setPartStatus(t, f.s, daKey, primary.ID, vda.Status{Health: vda.HealthHealthy, Epoch: f.da.Epoch})
			_, snap := next()
			require.Zero(t, secondaryExps(snap))

			secondariesOnly := vda.Status{Health: vda.HealthDegraded, ErrorMsg: "not initialized yet", SecondariesOnly: true}
			stale := secondariesOnly
			stale.Epoch = f.da.Epoch - 1
			setPartStatus(t, f.s, expKey, pport.ID, stale)
			next()
			mark := func() {
				t.Helper()
				da := f.da
				da.Initialized = true
				b, err := json.Marshal(da)
				require.NoError(t, err)
				require.NoError(t, store.Update(ctx, f.s, func(tx *store.Tx) error {
					tx.Put(daKey, b)
					return nil
				}))
			}
			secondariesOnly.Epoch = f.da.Epoch
			if markFirst {
				mark()
				round, snap := next()
				require.True(t, round, "a spec change")
				require.Zero(t, secondaryExps(snap), "initialized, the port reported at an older epoch")
				setPartStatus(t, f.s, expKey, pport.ID, secondariesOnly)
				round, snap = next()
				require.True(t, round, "the port exported to the secondaries asked for no round")
				require.Equal(t, 1, secondaryExps(snap))
				return
			}
			setPartStatus(t, f.s, expKey, pport.ID, secondariesOnly)
			round, snap := next()
			require.False(t, round, "a round for a DA not initialized")
			require.Zero(t, secondaryExps(snap), "admitted before the mark")
			mark()
			round, snap = next()
			require.True(t, round)
			require.Equal(t, 1, secondaryExps(snap))
		})
	}
}
