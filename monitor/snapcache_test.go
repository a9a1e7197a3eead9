package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/etcdembed"
)

// requireSameSnapshot fails unless got holds what want holds: every
// object, status and binding, the Problems in order, the holds, the
// malformed set and the index, and so the same plan and failover view.
func requireSameSnapshot(t testing.TB, want, got *Snapshot, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, want.Revision, got.Revision, msgAndArgs...)
	require.Equal(t, want.DNs, got.DNs, msgAndArgs...)
	require.Equal(t, want.PDs, got.PDs, msgAndArgs...)
	require.Equal(t, want.CNs, got.CNs, msgAndArgs...)
	require.Equal(t, want.DAs, got.DAs, msgAndArgs...)
	require.Equal(t, want.Exps, got.Exps, msgAndArgs...)
	require.Equal(t, want.Snaps, got.Snaps, msgAndArgs...)
	require.Equal(t, want.Clones, got.Clones, msgAndArgs...)
	require.Equal(t, want.Statuses, got.Statuses, msgAndArgs...)
	require.Equal(t, want.Bindings, got.Bindings, msgAndArgs...)
	require.Equal(t, problemStrings(want.Problems), problemStrings(got.Problems), msgAndArgs...)
	require.Equal(t, want.malformed, got.malformed, msgAndArgs...)
	require.Equal(t, holdStrings(want.hold), holdStrings(got.hold), msgAndArgs...)
	requireSameIndex(t, want, got)
	require.Equal(t, viewOf(want), viewOf(got), msgAndArgs...)
	wp, gp := Build(want), Build(got)
	require.Equal(t, problemStrings(wp.Problems), problemStrings(gp.Problems), msgAndArgs...)
	require.Equal(t, slices.Sorted(maps.Keys(wp.Nodes)), slices.Sorted(maps.Keys(gp.Nodes)), msgAndArgs...)
	for id, w := range wp.Nodes {
		g := gp.Nodes[id]
		require.Equal(t, fmt.Sprint(w.Held), fmt.Sprint(g.Held), msgAndArgs...)
		require.True(t, proto.Equal(w.Request, g.Request), "node %s: plans differ", w.Name)
	}
}

// requireSameIndex compares the snapshots' indexes. An ID that two
// objects use (the planner holds them) maps to either, as map order falls.
func requireSameIndex(t testing.TB, want, got *Snapshot) {
	t.Helper()
	owners := map[string]map[string]bool{} // kind/id -> keys or names
	add := func(kind, id, owner string) {
		if owners[kind+id] == nil {
			owners[kind+id] = map[string]bool{}
		}
		owners[kind+id][owner] = true
	}
	for key, pd := range want.PDs {
		add("pd", pd.Spec.ID, key)
	}
	for name, da := range want.DAs {
		for _, vd := range da.Spec.VDs {
			add("vd", vd.ID, name)
		}
		for _, c := range da.Spec.Cntlrs {
			add("cntlr", c.ID, name)
		}
	}
	for key, exp := range want.Exps {
		for _, p := range exp.Spec.Ports {
			add("port", p.ID, key)
		}
	}
	for key, sn := range want.Snaps {
		add("snap", sn.Spec.ID, key)
	}
	for key, cl := range want.Clones {
		add("clone", cl.Spec.ID, key)
	}
	wi, gi := want.index(), got.index()
	for kind, pair := range map[string][2]map[string]string{"pd": {wi.pd, gi.pd}, "vd": {wi.vd, gi.vd},
		"cntlr": {wi.cntlr, gi.cntlr}, "port": {wi.port, gi.port}, "snap": {wi.snap, gi.snap}, "clone": {wi.clone, gi.clone}} {
		require.Equal(t, slices.Sorted(maps.Keys(pair[0])), slices.Sorted(maps.Keys(pair[1])), "index of %s", kind)
		for id, owner := range pair[1] {
			require.True(t, owners[kind+id][owner], "index: %s %s -> %s", kind, id, owner)
		}
	}
}

func problemStrings(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

func holdStrings(h holds) map[string]string {
	out := map[string]string{"*": fmt.Sprint(h.all)}
	for n, why := range h.nodes {
		out[n] = why.Error()
	}
	return out
}

// kvPool is what random writes choose from: the keys of a small cluster
// (and a few more), and values valid for some key, malformed or junk.
type kvPool struct {
	keys   []string
	valid  map[string][]byte // each key's own value in the cluster
	values [][]byte
}

func newKVPool(t testing.TB) *kvPool {
	f := newFixture(t, 3)
	ctx := context.Background()
	_, err := f.c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da1", CntlrCount: 2, SizeBytes: 16 << 20,
		Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	_, err = f.c.CreateSnapshot(ctx, vda.SnapshotSpec{DAName: "da1", Name: "s0"})
	require.NoError(t, err)
	_, err = f.c.CreateClone(ctx, vda.CloneSpec{DAName: "da1", Name: "c0", SnapName: "s0"})
	require.NoError(t, err)
	res, err := f.s.List(ctx, vda.Prefix, store.ListOptions{})
	require.NoError(t, err)
	p := &kvPool{valid: map[string][]byte{}}
	for _, kv := range res.KVs {
		p.keys = append(p.keys, kv.Key)
		p.valid[kv.Key] = kv.Value
		p.values = append(p.values, kv.Value)
	}
	da := f.da
	broken := func(fn func(*vda.DiskArray)) []byte {
		d := da
		d.VDs, d.Cntlrs = slices.Clone(da.VDs), slices.Clone(da.Cntlrs)
		fn(&d)
		b, _ := json.Marshal(d)
		return b
	}
	nodeID := da.VDs[0].DNID
	bind, _ := json.Marshal(vda.Binding{NodeID: nodeID, AgentID: "agent-1"})
	otherBind, _ := json.Marshal(vda.Binding{NodeID: da.Cntlrs[0].CNID, AgentID: "agent-2"})
	st, _ := json.Marshal(vda.Status{Health: vda.HealthFailed, ErrorMsg: "x"})
	p.keys = append(p.keys, vda.Prefix+"binding/node/"+nodeID, vda.Prefix+"binding/other", vda.Prefix+"junk/x",
		vda.KeyDA("da9"), vda.KeyStatus(vda.KeyDA("da1")), vda.KeyExp("da1", "exp0"), vda.KeySnap("da1", "s9"), vda.KeyClone("da9", "c0"), MembersPrefix+"m0")
	p.valid[vda.Prefix+"binding/node/"+nodeID] = bind
	p.values = append(p.values, bind, otherBind, st, []byte("{not json"), []byte("[]"), []byte("7"), []byte(""),
		[]byte(`{"health":`),
		fmt.Appendf(nil, `{"name":"da0","epoch":"x","vds":[{"dn_name":%q}],"cntlrs":[{"cn_name":%q}]}`,
			da.VDs[0].DNName, da.Cntlrs[1].CNName),
		broken(func(d *vda.DiskArray) { d.VDs[1].ID = "X" }),
		broken(func(d *vda.DiskArray) { d.VDs[0].PDName = "nope" }),
		broken(func(d *vda.DiskArray) { d.Cntlrs[1].Primary = true }),
		broken(func(d *vda.DiskArray) { d.Epoch++ }),
		broken(func(d *vda.DiskArray) { d.Name = "da9" }))
	return p
}

// ops returns 1 to 3 random writes to distinct keys: deletes, the key's
// own value, or any value of the pool.
func (p *kvPool) ops(r *rand.Rand) []store.Op {
	n := 1 + r.IntN(3)
	var ops []store.Op
	for _, i := range r.Perm(len(p.keys))[:n] {
		key := p.keys[i]
		switch x := r.IntN(10); {
		case x < 2:
			ops = append(ops, store.Op{Key: key, Delete: true})
		case x < 6 && p.valid[key] != nil:
			ops = append(ops, store.Op{Key: key, Value: p.valid[key]})
		default:
			ops = append(ops, store.Op{Key: key, Value: p.values[r.IntN(len(p.values))]})
		}
	}
	return ops
}

// The state applied one event at a time equals DecodeSnapshot of every
// key after the same writes, and a view taken earlier does not change.
func TestStateMatchesDecodeSnapshot(t *testing.T) {
	p := newKVPool(t)
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for range 20 {
		st := newState()
		model := map[string]store.KV{}
		type taken struct {
			snap *Snapshot
			kvs  []store.KV
		}
		var views []taken
		var changed int64 // the last revision that wrote
		listed := func() []store.KV {
			var kvs []store.KV
			for _, k := range slices.Sorted(maps.Keys(model)) {
				kvs = append(kvs, model[k])
			}
			return kvs
		}
		for rev := int64(1); rev <= 200; rev++ {
			for _, op := range p.ops(r) {
				if op.Delete {
					if _, ok := model[op.Key]; !ok {
						continue
					}
					delete(model, op.Key)
					changed = rev
					st.apply(store.Event{Type: store.EventDelete, KV: store.KV{Key: op.Key, ModRevision: rev}})
					continue
				}
				kv := store.KV{Key: op.Key, Value: op.Value, ModRevision: rev, Version: 1}
				model[op.Key] = kv
				changed = rev
				st.apply(store.Event{Type: store.EventPut, KV: kv})
			}
			if r.IntN(3) > 0 {
				continue
			}
			got, _ := st.view()
			kvs := listed()
			requireSameSnapshot(t, DecodeSnapshot(changed, kvs), got, "at revision %d", rev)
			views = append(views, taken{got, kvs})
		}
		for _, v := range views {
			requireSameSnapshot(t, DecodeSnapshot(v.snap.Revision, v.kvs), v.snap, "view at %d changed later", v.snap.Revision)
		}
	}
}

// A SnapshotCache's snapshot after each write equals DecodeSnapshot of a
// List at that revision.
func testCacheDifferential(t *testing.T, s store.Store, steps int) {
	p := newKVPool(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(2, seed))
	c, _ := runCache(t, s)
	ctx := context.Background()
	for i := range steps {
		res, err := s.Txn(ctx, store.Txn{Ops: p.ops(r)})
		require.NoError(t, err)
		requireCacheMatches(t, c, s, res.Revision, "step %d", i)
	}
}

// cacheChange is one OnChange call: its specs flag and the revision the
// cache had reached when it was made.
type cacheChange struct {
	specs bool
	rev   int64
}

// runCache starts a cache of s, stopped at the end of the test, and
// returns it with its OnChange calls.
func runCache(t testing.TB, s store.Store) (*SnapshotCache, chan cacheChange) {
	changes := make(chan cacheChange, 1<<16)
	var c *SnapshotCache
	c = NewSnapshotCache(s, SnapshotCacheConfig{BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		OnChange: func(specs bool) {
			c.mu.Lock()
			rev := c.st.rev
			c.mu.Unlock()
			select {
			case changes <- cacheChange{specs: specs, rev: rev}:
			default:
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	return c, changes
}

// requireCacheMatches waits for c to reach rev and compares it with a
// List of s (nothing else writes meanwhile).
func requireCacheMatches(t testing.TB, c *SnapshotCache, s store.Store, rev int64, msgAndArgs ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	got, err := c.AtLeast(ctx, rev)
	require.NoError(t, err, msgAndArgs...)
	want, err := LoadSnapshot(ctx, s)
	require.NoError(t, err)
	require.Equal(t, rev, want.Revision, "another writer moved the store on")
	requireSameSnapshot(t, want, got, msgAndArgs...)
}

func TestSnapshotCacheDifferentialMemstore(t *testing.T) {
	testCacheDifferential(t, newMemStore(t), 300)
}

func TestSnapshotCacheDifferentialEtcd(t *testing.T) {
	testCacheDifferential(t, newEtcdStore(t), 100)
}

// newEtcdStore opens a store on an embedded etcd server of its own.
func newEtcdStore(t testing.TB) store.Store {
	dir, err := os.MkdirTemp("", "vda-mon") // short: the unix socket's path is limited
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s, err := etcdembed.Open(context.Background(), etcdembed.Config{Dir: dir, HeartbeatInterval: 10 * time.Millisecond,
		ElectionTimeout: 100 * time.Millisecond}, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// cutStore lets a test cut the watches of a store, hold new ones back,
// and count Lists.
type cutStore struct {
	store.Store
	lists atomic.Int64

	mu      sync.Mutex
	gate    chan struct{} // new watches wait while it is open
	current *cutWatcher   // the last watch started
}

func newCutStore(s store.Store) *cutStore { return &cutStore{Store: s} }

func (c *cutStore) List(ctx context.Context, prefix string, opt store.ListOptions) (store.ListResult, error) {
	if prefix == vda.Prefix {
		c.lists.Add(1)
	}
	return c.Store.List(ctx, prefix, opt)
}

func (c *cutStore) Watch(ctx context.Context, prefix string, from int64) (store.Watcher, error) {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	inner, err := c.Store.Watch(ctx, prefix, from)
	if err != nil {
		return nil, err
	}
	w := &cutWatcher{inner: inner, ch: make(chan store.WatchResponse), cut: make(chan error, 1), stop: make(chan struct{}),
		exited: make(chan struct{})}
	go w.run()
	c.mu.Lock()
	c.current = w
	c.mu.Unlock()
	return w, nil
}

// cut ends the running watch (with a last response carrying err if it is
// not nil) and holds the next one back until the returned release.
func (c *cutStore) cut(t testing.TB, err error) (release func()) {
	var w *cutWatcher
	gate := make(chan struct{})
	eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		w = c.current
		if w == nil {
			return false
		}
		select {
		case <-w.exited:
			return false
		default:
			c.gate = gate
			return true
		}
	}, wait, time.Millisecond, "no watch running")
	w.cut <- err
	<-w.exited
	return func() {
		c.mu.Lock()
		c.gate = nil
		c.mu.Unlock()
		close(gate)
	}
}

type cutWatcher struct {
	inner  store.Watcher
	ch     chan store.WatchResponse
	cut    chan error
	stop   chan struct{}
	once   sync.Once
	exited chan struct{}
}

func (w *cutWatcher) Events() <-chan store.WatchResponse { return w.ch }

func (w *cutWatcher) Close() error {
	w.once.Do(func() { close(w.stop) })
	return w.inner.Close()
}

func (w *cutWatcher) run() {
	defer close(w.exited)
	defer close(w.ch)
	cut := func(err error) {
		if err != nil {
			select {
			case w.ch <- store.WatchResponse{Err: err}:
			case <-w.stop:
			}
		}
	}
	for {
		select {
		case resp, ok := <-w.inner.Events():
			if !ok {
				return
			}
			select {
			case w.ch <- resp:
			case err := <-w.cut: // resp is lost with the watch
				cut(err)
				return
			case <-w.stop:
				return
			}
		case err := <-w.cut:
			cut(err)
			return
		case <-w.stop:
			return
		}
	}
}

// A cache whose watch is lost resumes where it stopped; if that revision
// was compacted (the store says so when it watches again, or in the last
// response of the watch), it lists the store again. Either way its
// snapshot equals a List.
func testCacheRecovers(t *testing.T, inner store.Store) {
	p := newKVPool(t)
	r := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	s := newCutStore(inner)
	ctx := context.Background()
	write := func(n int) int64 {
		var rev int64
		for range n {
			res, err := s.Txn(ctx, store.Txn{Ops: p.ops(r)})
			require.NoError(t, err)
			rev = res.Revision
		}
		return rev
	}
	// Some state, then a DA and an exporter that will be deleted, and a
	// PD that will be malformed, while the watch is down.
	for _, key := range p.keys {
		if v := p.valid[key]; v != nil {
			_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: key, Value: v}}})
			require.NoError(t, err)
		}
	}
	c, changes := runCache(t, s)
	rev := write(5)
	requireCacheMatches(t, c, inner, rev, "before any loss")
	require.EqualValues(t, 1, s.lists.Load())

	// Lost, not compacted: resumed from the next revision, no List.
	release := s.cut(t, nil)
	seen := rev
	_, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyDA("da1"), Delete: true},
		{Key: vda.KeyPD(p.pdDN(t), "pd0"), Value: []byte("[]")}}})
	require.NoError(t, err)
	rev = write(5)
	release()
	requireCacheMatches(t, c, inner, rev, "resumed")
	require.EqualValues(t, 1, s.lists.Load(), "resumed without a List")
	require.Contains(t, changesThrough(t, changes, seen, rev), true, "a spec change requests a round")

	// Lost while the store compacted past it: listed again.
	release = s.cut(t, nil)
	rev = write(5)
	require.NoError(t, inner.(store.Compactor).Compact(ctx, rev))
	release()
	rev = write(1)
	requireCacheMatches(t, c, inner, rev, "listed after compaction")
	require.EqualValues(t, 2, s.lists.Load(), "listed again")

	// The watch itself reports the compaction.
	release = s.cut(t, fmt.Errorf("test: %w", store.ErrCompacted))
	rev = write(3)
	release()
	requireCacheMatches(t, c, inner, rev, "listed after a compacted watch")
	require.EqualValues(t, 3, s.lists.Load(), "listed again")

	// Only statuses and monitors change: no round is requested.
	seen = rev
	healthy, _ := json.Marshal(vda.Status{Health: vda.HealthHealthy})
	res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyStatus(vda.KeyDA("da0")), Value: healthy},
		{Key: MembersPrefix + "m9", Value: []byte("x")}}})
	require.NoError(t, err)
	requireCacheMatches(t, c, inner, res.Revision, "statuses")
	require.NotContains(t, changesThrough(t, changes, seen, res.Revision), true, "a status change requests no round")
}

// changesThrough waits for the OnChange call made at revision rev or
// later (the cache calls it after its state moved, so it may come after
// AtLeast returned) and returns the specs flags of the calls made past
// revision after.
func changesThrough(t testing.TB, ch chan cacheChange, after, rev int64) []bool {
	t.Helper()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	var out []bool
	for {
		select {
		case c := <-ch:
			if c.rev > after {
				out = append(out, c.specs)
			}
			if c.rev >= rev {
				return out
			}
		case <-timeout.C:
			t.Fatalf("no change reported at revision %d", rev)
		}
	}
}

// pdDN returns the DN name of the first PD of the pool.
func (p *kvPool) pdDN(t testing.TB) string {
	for _, key := range p.keys {
		var pd vda.PhysicalDisk
		if strings.HasPrefix(key, vda.PrefixPD) && json.Unmarshal(p.valid[key], &pd) == nil {
			return pd.DNName
		}
	}
	t.Fatal("no PD")
	return ""
}

func TestSnapshotCacheRecoversMemstore(t *testing.T) { testCacheRecovers(t, newMemStore(t)) }

func TestSnapshotCacheRecoversEtcd(t *testing.T) { testCacheRecovers(t, newEtcdStore(t)) }

// A cache waits for its first List, and a snapshot at a revision it has
// not reached waits for the watch (or the context).
func TestSnapshotCacheWaits(t *testing.T) {
	s := newCutStore(newMemStore(t))
	ctx := context.Background()
	c := NewSnapshotCache(s, SnapshotCacheConfig{})
	short, cancel := context.WithCancel(ctx)
	cancel()
	_, err := c.Snapshot(short)
	require.ErrorIs(t, err, context.Canceled, "no List yet")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() { stop(); <-done }()
	snap, err := c.Snapshot(ctx)
	require.NoError(t, err)
	got := make(chan *Snapshot, 1)
	go func() {
		snap, err := c.AtLeast(ctx, snap.Revision+1)
		if err == nil {
			got <- snap
		}
		close(got)
	}()
	res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyCN("x"), Value: []byte("{")}}})
	require.NoError(t, err)
	later := <-got
	require.NotNil(t, later)
	require.Equal(t, res.Revision, later.Revision)
	require.Len(t, later.Problems, 1)
	same, err := c.Snapshot(ctx)
	require.NoError(t, err)
	require.Same(t, later, same, "one view per revision")
	require.Empty(t, snap.Problems, "an earlier snapshot does not change")
}

// Two monitors on one store; the watch of one is lost while the store is
// compacted past it. It lists the store again, and every node, whichever
// monitor owns it, gets a change made meanwhile.
func TestTwoMonitorsOneWatchCompacted(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	da := tc.createDA("da0", 2, 2)
	snap, err := LoadSnapshot(ctx, s)
	require.NoError(t, err)
	nameB := ""
	for i := 0; nameB == "" && i < 100; i++ {
		owners := map[string]int{}
		for _, np := range Build(snap).Nodes {
			owners[Owner([]string{"a", fmt.Sprint("b", i)}, np.ID)]++
		}
		if owners["a"] > 0 && owners[fmt.Sprint("b", i)] > 0 {
			nameB = fmt.Sprint("b", i)
		}
	}
	require.NotEmpty(t, nameB, "the test needs nodes on both monitors")
	cutA := newCutStore(s)
	a, _ := startMonitor(t, testConfig(cutA, "a"))
	b, _ := startMonitor(t, testConfig(s, nameB))
	eventually(t, func() bool {
		return len(a.Membership().Members()) == 2 && len(b.Membership().Members()) == 2 && tc.allConverged(tc.all()...)
	}, wait, 5*time.Millisecond)

	release := cutA.cut(t, nil)
	old, _ := da.Primary()
	movePrimaryTo(t, s, "da0", 1-old.Idx)
	res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.Prefix + "junk", Value: []byte("x")}}})
	require.NoError(t, err)
	require.NoError(t, s.(store.Compactor).Compact(ctx, res.Revision))
	release()
	moved := tc.da("da0")
	primary, _ := moved.Primary()
	eventually(t, func() bool {
		return tc.allConverged(tc.all()...) && isPrimaryFor(tc.agent(primary.CNName).LastApplied(), primary.ID)
	}, wait, 5*time.Millisecond)
	// a lists again once its watch resumes, which b's nodes converging
	// need not wait for.
	eventually(t, func() bool { return cutA.lists.Load() == 2 }, wait, 5*time.Millisecond, "a listed the store again")
	for _, m := range []*Monitor{a, b} {
		eventually(t, func() bool { // once the monitors have written their statuses
			got, err := m.snaps.Snapshot(ctx)
			require.NoError(t, err)
			want, err := LoadSnapshot(ctx, s)
			require.NoError(t, err)
			if got.Revision != want.Revision {
				return false
			}
			requireSameSnapshot(t, want, got)
			return true
		}, wait, 5*time.Millisecond)
	}
}
