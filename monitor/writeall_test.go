package monitor

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// writeAll commits a push's edits together: one store transaction for
// several objects, an edit whose spec changed since the snapshot dropped
// (stale) without dropping the others, one of a deleted spec ignored, and
// the snapshot's decoded specs give the same overall health as the store's.
func TestWriteAllBatches(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	snap, _ := f.plan(t)
	m := f.statusMonitor(4)
	da := snap.DAs["da0"]
	exp := snap.Exps[vda.KeyExp("da0", "exp0")]
	require.NotNil(t, exp)
	healthy := vda.Status{Health: vda.HealthHealthy}
	var edits []statusEdit
	for _, vd := range da.Spec.VDs {
		edits = append(edits, statusEdit{specKey: da.Key, guard: da.ModRevision, edit: setPart(vd.ID, healthy),
			da: &da.Spec, daRev: da.ModRevision})
	}
	for _, c := range da.Spec.Cntlrs {
		edits = append(edits, statusEdit{specKey: da.Key, guard: da.ModRevision, edit: setPart(c.ID, healthy)})
	}
	for _, p := range exp.Spec.Ports {
		edits = append(edits, statusEdit{specKey: exp.Key, guard: exp.ModRevision, edit: setPart(p.ID, healthy),
			exp: &exp.Spec, da: &da.Spec, daRev: da.ModRevision})
	}
	edits = append(edits,
		statusEdit{specKey: exp.Key, guard: exp.ModRevision - 1, edit: setPart("stale", healthy)}, // dropped: stale
		statusEdit{specKey: vda.KeyDA("gone"), guard: 1, edit: setPart("x", healthy)})             // no spec: ignored
	rev, err := f.s.Revision(ctx)
	require.NoError(t, err)
	stale, err := m.writeAll(ctx, edits)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{exp.Key: true}, stale, "only the stale edit's key is dropped")
	after, err := f.s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, rev+1, after, "one transaction for the DA's and the exporter's statuses")

	got, err := f.c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Equal(t, vda.HealthHealthy, got.Status.Health, "%+v", got.Status)
	gotExp, err := f.c.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.Equal(t, vda.HealthHealthy, gotExp.Status.Health, "%+v", gotExp.Status)
	require.NotContains(t, gotExp.Status.Parts, "stale")

	// The same edits again change nothing: nothing is written.
	_, err = m.writeAll(ctx, edits)
	require.NoError(t, err)
	again, err := f.s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, after, again)
}

// Status writes take the specs and statuses the monitor holds instead of
// reading them (no Get at all while the snapshot cache is current), and a
// stale copy costs a failed commit, never a wrong status: an edit that
// would change nothing in the stale copy but changes the store is written.
func TestWriteAllAssumesTheCache(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(t, 2)
	snap, _ := f.plan(t)
	da := snap.DAs["da0"]
	exp := snap.Exps[vda.KeyExp("da0", "exp0")]
	require.NotNil(t, exp)
	edits := func(health vda.Health) []statusEdit {
		st := vda.Status{Health: health}
		var out []statusEdit
		for _, vd := range da.Spec.VDs {
			out = append(out, statusEdit{specKey: da.Key, guard: da.ModRevision, edit: setPart(vd.ID, st), da: &da.Spec, daRev: da.ModRevision})
		}
		for _, p := range exp.Spec.Ports {
			out = append(out, statusEdit{specKey: exp.Key, guard: exp.ModRevision, edit: setPart(p.ID, st),
				exp: &exp.Spec, da: &da.Spec, daRev: da.ModRevision})
		}
		return out
	}
	m, counted, current, stopCache := f.cachedStatusMonitor(t)
	partHealth := func(key, part string) vda.Health {
		kv, err := f.s.Get(ctx, vda.KeyStatus(key))
		require.NoError(t, err)
		var st vda.Status
		require.NoError(t, json.Unmarshal(kv.Value, &st))
		return st.Parts[part].Health
	}

	current()
	_, err := m.writeAll(ctx, edits(vda.HealthHealthy))
	require.NoError(t, err)
	require.Zero(t, counted.reads.Load(), "a current cache: nothing read")
	require.Equal(t, vda.HealthHealthy, partHealth(da.Key, da.Spec.VDs[0].ID))
	require.Equal(t, vda.HealthHealthy, partHealth(exp.Key, exp.Spec.Ports[0].ID))

	// Unchanged: a commit without writes checks the copies, nothing is read.
	before := current()
	_, err = m.writeAll(ctx, edits(vda.HealthHealthy))
	require.NoError(t, err)
	require.Zero(t, counted.reads.Load())
	after, err := f.s.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after, "nothing written")

	// The cache stops following the store, which then changes: the same
	// edits change nothing in the cache's copy but must still land.
	stopCache()
	_, err = f.statusMonitor(1).writeAll(ctx, edits(vda.HealthFailed))
	require.NoError(t, err)
	require.Equal(t, vda.HealthFailed, partHealth(da.Key, da.Spec.VDs[0].ID))
	_, err = m.writeAll(ctx, edits(vda.HealthHealthy))
	require.NoError(t, err)
	require.Positive(t, counted.reads.Load(), "the stale copy's commit failed, then the store was read")
	require.Equal(t, vda.HealthHealthy, partHealth(da.Key, da.Spec.VDs[0].ID))
	require.Equal(t, vda.HealthHealthy, partHealth(exp.Key, exp.Spec.Ports[0].ID))
}

// The nodes of a DA report its parts from their own workers: their writes
// to the one status key wait for each other and each assumes what the one
// before wrote, so none fails its commit or reads the store, even while
// the snapshot cache lags (here: stopped).
func TestWriteAllFollowsItsOwnWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(t, 2)
	snap, _ := f.plan(t)
	da := snap.DAs["da0"]
	m, counted, current, stopCache := f.cachedStatusMonitor(t)
	current()
	stopCache()

	var parts []string
	for _, vd := range da.Spec.VDs {
		parts = append(parts, vd.ID)
	}
	for _, c := range da.Spec.Cntlrs {
		parts = append(parts, c.ID)
	}
	var wg sync.WaitGroup
	for _, id := range parts {
		wg.Go(func() {
			_, err := m.writeAll(ctx, []statusEdit{{specKey: da.Key, guard: da.ModRevision,
				edit: setPart(id, vda.Status{Health: vda.HealthHealthy}), da: &da.Spec, daRev: da.ModRevision}})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Zero(t, counted.reads.Load(), "each write assumed the one before")
	assert.Zero(t, counted.failedTxns.Load(), "no write failed its commit")
	got, err := f.c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	for _, id := range parts {
		assert.Equal(t, vda.HealthHealthy, got.Status.Part(id).Health, id)
	}
	assert.Equal(t, vda.HealthHealthy, got.Status.Health)
}

// cachedStatusMonitor is statusMonitor(1) counting its store's calls, with
// a snapshot cache of the fixture's store: current waits for the cache to
// have the store's revision and returns it, stop stops the cache (it then
// lags the store).
func (f *fixture) cachedStatusMonitor(t *testing.T) (m *Monitor, counted *countingStore, current func() int64, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	counted = &countingStore{Store: f.s}
	m = f.statusMonitor(1)
	m.cfg.Store = counted
	m.snaps = NewSnapshotCache(f.s, SnapshotCacheConfig{})
	done := make(chan struct{})
	go func() { defer close(done); _ = m.snaps.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	current = func() int64 {
		rev, err := f.s.Revision(context.Background())
		require.NoError(t, err)
		_, err = m.snaps.AtLeast(context.Background(), rev)
		require.NoError(t, err)
		return rev
	}
	return m, counted, current, stop
}

// An edit whose spec the snapshot cache has already seen change (here the
// DA marked initialized after the snapshot the edits came from) is dropped
// without a commit that would fail on it and the reads of a retry, and an
// exporter's edit takes the cache's newer copy of its DA instead of the
// edit's: nothing is read, no commit fails, the exporter's status lands
// and only the DA's edit is dropped (the worker writes it again against
// the next snapshot).
func TestWriteAllDropsWhatTheCacheSawChange(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	snap, _ := f.plan(t)
	da := snap.DAs["da0"]
	exp := snap.Exps[vda.KeyExp("da0", "exp0")]
	require.NotNil(t, exp)
	m, counted, current, _ := f.cachedStatusMonitor(t)

	marked := da.Spec
	marked.Initialized = true
	b, err := json.Marshal(marked)
	require.NoError(t, err)
	_, err = f.s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: da.Key, Value: b}}})
	require.NoError(t, err)
	current()

	healthy := vda.Status{Health: vda.HealthHealthy}
	var edits []statusEdit
	for _, vd := range da.Spec.VDs {
		edits = append(edits, statusEdit{specKey: da.Key, guard: da.ModRevision, edit: setPart(vd.ID, healthy),
			da: &da.Spec, daRev: da.ModRevision})
	}
	for _, p := range exp.Spec.Ports {
		edits = append(edits, statusEdit{specKey: exp.Key, guard: exp.ModRevision, edit: setPart(p.ID, healthy),
			exp: &exp.Spec, da: &da.Spec, daRev: da.ModRevision})
	}
	dropped, err := m.writeAll(ctx, edits)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{da.Key: true}, dropped, "the DA's edits are dropped, the exporter's are not")
	require.Zero(t, counted.failedTxns.Load(), "no commit failed on the stale DA")
	require.Zero(t, counted.reads.Load(), "nothing read")

	gotExp, err := f.c.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.Equal(t, vda.HealthHealthy, gotExp.Status.Health, "%+v", gotExp.Status)
	got, err := f.c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	for _, vd := range da.Spec.VDs {
		require.NotEqual(t, vda.HealthHealthy, got.Status.Part(vd.ID).Health, "a stale edit landed")
	}
}

// Marking a DA initialized takes the snapshot cache's copy of it instead
// of reading the store, and asks nothing of the store once the cache shows
// it marked; a stale copy (the cache stopped, a failover moved the
// primary since) costs a failed commit, never a deposed primary's mark.
func TestMarkInitializedAssumesTheCache(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 2)
	snap, _ := f.plan(t)
	m, counted, current, stopCache := f.cachedStatusMonitor(t)
	current()
	require.NoError(t, m.markInitialized(ctx, snap, []string{"da0"}))
	require.Zero(t, counted.reads.Load(), "the cache's copy: nothing read")
	got, err := f.c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.True(t, got.Initialized)

	current()
	txns := counted.writes.Load() + counted.failedTxns.Load()
	require.NoError(t, m.markInitialized(ctx, snap, []string{"da0"}), "the primary reports it again")
	require.Equal(t, txns, counted.writes.Load()+counted.failedTxns.Load(), "marked in the cache: no transaction")
	require.Zero(t, counted.reads.Load())

	// A DA not yet marked whose primary moved while the cache lagged.
	_, err = f.c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da1", CntlrCount: 2, SizeBytes: 32 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	snap, _ = f.plan(t)
	current()
	stopCache()
	movePrimaryTo(t, f.s, "da1", 1)
	require.NoError(t, m.markInitialized(ctx, snap, []string{"da1"}))
	require.Positive(t, counted.failedTxns.Load(), "the stale copy's commit failed")
	got, err = f.c.GetDiskArray(ctx, "da1")
	require.NoError(t, err)
	require.False(t, got.Initialized, "a report from the deposed primary")
}
