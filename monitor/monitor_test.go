package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/store"
)

const wait = 30 * time.Second // the least a condition is waited for (see eventually)

func TestConfigValidate(t *testing.T) {
	s := newMemStore(t)
	require.ErrorIs(t, DefaultConfig(s, "m").Validate(), ErrConfig, "neither TLS nor Insecure")
	insecure := DefaultConfig(s, "m")
	insecure.Insecure = true
	require.NoError(t, insecure.Validate())
	require.NoError(t, Config{Store: s, ID: "m", Insecure: true}.Validate(), "zero values mean the defaults")
	noStore := insecure
	noStore.Store = nil
	require.NoError(t, noStore.Validate(), "the settings alone are valid without a store")
	_, err := New(noStore)
	require.ErrorIs(t, err, ErrConfig, "New needs the store")
	for name, mut := range map[string]func(*Config){
		"negative ttl":   func(c *Config) { c.LeaseTTL = -1 },
		"backoff order":  func(c *Config) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond },
		"bad failover":   func(c *Config) { c.Failover.MissThreshold = 1 },
		"partial TLS":    func(c *Config) { c.TLS.CertFile = "x.pem" },
		"negative conc.": func(c *Config) { c.StatusConcurrency = -1 },
		"slow timeout within the window": func(c *Config) {
			c.Failover.SlowTimeout = c.Failover.Window
		},
		"negative hold-down":       func(c *Config) { c.Failover.HoldDown = -time.Second },
		"probe longer than silent": func(c *Config) { c.HealthTimeout = c.Failover.SlowTimeout + 1 },
		"negative health timeout":  func(c *Config) { c.HealthTimeout = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig(s, "m")
			cfg.Insecure = true
			mut(&cfg)
			require.ErrorIs(t, cfg.Validate(), ErrConfig)
			_, err := New(cfg)
			require.ErrorIs(t, err, ErrConfig)
		})
	}
	cfg := DefaultConfig(s, "m")
	cfg.Insecure = true
	cfg.HealthTimeout = 6 * time.Second
	require.ErrorContains(t, cfg.Validate(), "health timeout 6s exceeds the slow timeout 5s")
	cfg = DefaultConfig(s, "m")
	cfg.Insecure = true
	cfg.Failover.SlowTimeout = time.Second
	require.ErrorContains(t, cfg.Validate(), "slow timeout 1s must exceed the window 1.5s")
	cfg = DefaultConfig(s, "m")
	cfg.Insecure = true
	cfg.Failover.HoldDown = 0
	require.NoError(t, cfg.Validate(), "no hold-down")
	cfg = DefaultConfig(s, "a/b")
	cfg.Insecure = true
	_, err = New(cfg)
	require.ErrorIs(t, err, ErrConfig, "member IDs are validated")
}

// A probe may take half the slow timeout by default: a late answer still
// counts, and a second probe fits before a silent node is failed.
func TestHealthTimeoutDefault(t *testing.T) {
	s := newMemStore(t)
	require.Equal(t, 2500*time.Millisecond, Config{Store: s, ID: "m"}.withDefaults().HealthTimeout)
	cfg := Config{Store: s, ID: "m", Failover: failover.DefaultConfig()}
	cfg.Failover.SlowTimeout = 8 * time.Second
	require.Equal(t, 4*time.Second, cfg.withDefaults().HealthTimeout)
	cfg.HealthTimeout = time.Second
	require.Equal(t, time.Second, cfg.withDefaults().HealthTimeout)
}

// There is no busy grace by default (agents answer Health on their own
// SPDK connection, and silence fails a node only after SlowTimeout); one
// can be set, never longer than a Sync may last.
func TestBusyGraceDefault(t *testing.T) {
	s := newMemStore(t)
	require.Zero(t, Config{Store: s, ID: "m"}.withDefaults().BusyGrace, "none by default")
	require.Equal(t, time.Second, Config{Store: s, ID: "m", SyncTimeout: time.Second, BusyGrace: time.Minute}.withDefaults().BusyGrace)
	require.Equal(t, time.Minute, Config{Store: s, ID: "m", BusyGrace: time.Minute}.withDefaults().BusyGrace)
}

func TestMonitorPushesStateAndWritesStatus(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	tc.createDA("da0", 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)

	// The primary reported its lvstore: the DA is marked initialized, and
	// the primary is then pushed initialized=true.
	eventually(t, func() bool { return tc.da("da0").Initialized }, wait, 5*time.Millisecond)
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	da := tc.da("da0")
	p, _ := da.Primary()
	require.True(t, tc.agent(p.CNName).LastApplied().GetCn().GetCntlrs()[0].GetDa().GetInitialized())

	ctx := context.Background()
	eventually(t, func() bool {
		da := tc.da("da0")
		return da.Status.Health == vda.HealthHealthy && len(da.Status.Parts) == 4
	}, wait, 5*time.Millisecond)
	for _, vd := range da.VDs {
		pd, err := tc.c.GetPhysicalDisk(ctx, vd.DNName, vd.PDName)
		require.NoError(t, err)
		eventually(t, func() bool {
			pd, err = tc.c.GetPhysicalDisk(ctx, vd.DNName, vd.PDName)
			return err == nil && pd.Status.TotalBytes == fakePDBytes
		}, wait, 5*time.Millisecond)
		require.EqualValues(t, fakePDBytes-4<<20, pd.Status.FreeBytes)
		require.Equal(t, vda.HealthHealthy, pd.Status.Health)
		require.EqualValues(t, fakePDBytes, pd.CapacityBytes(), "reported capacity is what placement uses")
	}
	eventually(t, func() bool {
		exp, err := tc.c.GetExporter(ctx, "da0", "exp0")
		return err == nil && exp.Status.Health == vda.HealthHealthy && len(exp.Status.Parts) == 2
	}, wait, 5*time.Millisecond)
	for _, a := range tc.all() {
		eventually(t, func() bool { return nodeHealth(t, s, a) == vda.HealthHealthy }, wait, 5*time.Millisecond)
	}

	// A new DA reaches every node it concerns.
	tc.createDA("da1", 2, 2)
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
}

func nodeHealth(t testing.TB, s store.Store, a *agenttest.Fake) vda.Health {
	key := vda.KeyDN(a.Addr)
	if a.Role == agent.RoleCN {
		key = vda.KeyCN(a.Addr)
	}
	kv, err := s.Get(context.Background(), vda.KeyStatus(key))
	if errors.Is(err, store.ErrNotFound) {
		return vda.HealthUnknown
	}
	require.NoError(t, err)
	var st vda.Status
	require.NoError(t, json.Unmarshal(kv.Value, &st))
	return st.Health
}

// One agent that never answers does not stall the others: they converge,
// and keep converging on later changes, while its pushes time out.
func TestMonitorHungAgentDoesNotStallOthers(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 3, 3)
	tc.createDA("da0", 3, 3)
	hung := tc.dns[1]
	hung.SetHang()
	cfg := testConfig(s, "m0")
	cfg.SyncTimeout = time.Hour // the hang lasts for the whole test
	startMonitor(t, cfg)
	others := []*agenttest.Fake{tc.dns[0], tc.dns[2], tc.cns[0], tc.cns[1], tc.cns[2]}
	eventually(t, func() bool { return tc.allConverged(others...) }, wait, 5*time.Millisecond)
	tc.createDA("da1", 2, 2)
	eventually(t, func() bool { return tc.allConverged(others...) }, wait, 5*time.Millisecond)
	require.Nil(t, hung.LastApplied())
	require.NotEmpty(t, hung.Records(), "the hung agent was called")
	hung.Unhang()
	eventually(t, func() bool { return tc.converged(hung) }, wait, 5*time.Millisecond)
}

// Failed pushes are retried with backoff until they succeed.
func TestMonitorRetriesFailedPushes(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 1)
	tc.createDA("da0", 1, 1)
	var mu sync.Mutex
	fails := 0
	tc.cns[0].SetScript(func(req *agentpb.SyncRequest) (*agentpb.SyncReply, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails < 4 {
			fails++
			return nil, status.Error(codes.Unavailable, "spdk restarting")
		}
		return okReply(req), nil
	})
	startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool { return tc.converged(tc.cns[0]) }, wait, 5*time.Millisecond)
	require.GreaterOrEqual(t, len(tc.cns[0].Records()), 5)
	// While failing, the node's status says why; success clears it.
	eventually(t, func() bool {
		cn, err := tc.c.GetControllerNode(context.Background(), tc.cns[0].Addr)
		return err == nil && cn.Status.ErrorMsg == "" && cn.Status.Health == vda.HealthHealthy
	}, wait, 5*time.Millisecond)
}

// An agent reporting a new instance (restarted) is re-synced although
// nothing changed in the store.
func TestMonitorResyncsRestartedAgent(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 1)
	tc.createDA("da0", 1, 1)
	startMonitor(t, testConfig(s, "m0"))
	a := tc.dns[0]
	eventually(t, func() bool { return tc.converged(a) }, wait, 5*time.Millisecond)
	// Let the monitor settle: initialized is set and pushed.
	eventually(t, func() bool { return tc.da("da0").Initialized && tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
	n := len(a.Records())
	a.SetInstance("i1")
	eventually(t, func() bool { return len(a.Records()) > n }, wait, 5*time.Millisecond)
	require.True(t, tc.converged(a))
}

// The periodic resync pushes unchanged state again (drift repair).
func TestMonitorPeriodicResync(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 1)
	cfg := testConfig(s, "m0")
	cfg.ResyncInterval = 30 * time.Millisecond
	startMonitor(t, cfg)
	eventually(t, func() bool { return len(tc.dns[0].Records()) >= 4 }, wait, 5*time.Millisecond)
	recs := tc.dns[0].Records()
	first, last := recs[0].Req, recs[len(recs)-1].Req
	last.Generation, last.StoreRevision = first.Generation, first.StoreRevision
	require.True(t, proto.Equal(first, last), "the same state, re-applied")
}

// A node that holds a malformed object is never pushed; the others are.
func TestMonitorHoldsNodeWithMalformedObject(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 1)
	tc.createDA("da0", 2, 1)
	_, err := s.Txn(context.Background(), store.Txn{Ops: []store.Op{{Key: vda.KeyPD(tc.dns[1].Addr, "broken"), Value: []byte("{")}}})
	require.NoError(t, err)
	startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool { return tc.allConverged(tc.dns[0], tc.cns[0]) }, wait, 5*time.Millisecond)
	require.Empty(t, tc.dns[1].Records())
}

// A status computed from an old snapshot never lands on newer desired
// state: the write is guarded by the spec's revision as read.
func TestStatusGuardedBySpecRevision(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 1)
	tc.createDA("da0", 1, 1)
	m, err := New(testConfig(s, "m0"))
	require.NoError(t, err)
	ctx := context.Background()
	snap, err := LoadSnapshot(ctx, s)
	require.NoError(t, err)
	da := snap.DAs["da0"]
	desc := "edited"
	_, err = tc.c.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{Description: &desc})
	require.NoError(t, err)
	vd := da.Spec.VDs[0].ID
	old := statusEdit{specKey: da.Key, guard: da.ModRevision, edit: setPart(vd, vda.Status{Health: vda.HealthDegraded, ErrorMsg: "OLD"})}
	require.ErrorIs(t, m.writeStatus(ctx, old), errSpecChanged)
	require.Empty(t, tc.da("da0").Status.Parts, "an edit derived from the old spec is dropped")

	snap, err = LoadSnapshot(ctx, s)
	require.NoError(t, err)
	cur := statusEdit{specKey: da.Key, guard: snap.DAs["da0"].ModRevision, edit: setPart(vd, vda.Status{Health: vda.HealthHealthy})}
	require.NoError(t, m.writeStatus(ctx, cur))
	require.Equal(t, vda.HealthHealthy, tc.da("da0").Status.Part(vd).Health)

	// Deleted specs get no status.
	require.NoError(t, m.writeStatus(ctx, statusEdit{specKey: vda.KeyDA("gone"), edit: setPart(vd, vda.Status{Health: vda.HealthHealthy})}))
	_, err = s.Get(ctx, vda.KeyStatus(vda.KeyDA("gone")))
	require.ErrorIs(t, err, store.ErrNotFound)
}

// End to end: the reply to a Sync of an old state, answered after the DA
// changed (here: a new primary), never shows up in the DA's status, while
// the reply to the new state does.
func TestMonitorOldReplyNeverOverwritesNewerSpec(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 1, 2)
	tc.createDA("da0", 1, 2)
	ctx := context.Background()
	firstGen := make(chan int64, 1)
	release := make(chan struct{})
	var first sync.Once
	tc.dns[0].SetScript(func(req *agentpb.SyncRequest) (*agentpb.SyncReply, error) {
		r := okReply(req)
		first.Do(func() {
			firstGen <- req.GetGeneration()
			<-release // the spec changes while this reply is in flight
			for _, o := range r.Objects {
				if o.Kind == agentpb.Kind_KIND_VD {
					o.Ok, o.Error = false, "OLD"
				}
			}
		})
		return r, nil
	})
	var seen []string
	var mu sync.Mutex
	w, err := s.Watch(ctx, vda.KeyStatus(vda.KeyDA("da0")), 0)
	require.NoError(t, err)
	defer w.Close()
	go func() {
		for resp := range w.Events() {
			for _, ev := range resp.Events {
				mu.Lock()
				seen = append(seen, string(ev.KV.Value))
				mu.Unlock()
			}
		}
	}()
	startMonitor(t, testConfig(s, "m0"))
	<-firstGen
	movePrimaryTo(t, s, "da0", 1)
	close(release)
	vd := tc.da("da0").VDs[0].ID
	eventually(t, func() bool { return tc.da("da0").Status.Part(vd).Health == vda.HealthHealthy }, wait, 5*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, v := range seen {
		require.NotContains(t, v, "OLD")
	}
}

// movePrimaryTo commits a new primary and epoch+1, as a failover does.
func movePrimaryTo(t testing.TB, s store.Store, name string, idx int) {
	require.NoError(t, store.Update(context.Background(), s, func(tx *store.Tx) error {
		kv, err := tx.Get(vda.KeyDA(name))
		if err != nil {
			return err
		}
		var da vda.DiskArray
		if err := json.Unmarshal(kv.Value, &da); err != nil {
			return err
		}
		for i := range da.Cntlrs {
			da.Cntlrs[i].Primary = da.Cntlrs[i].Idx == idx
			if da.Cntlrs[i].Primary {
				da.PrimaryCntlrID = da.Cntlrs[i].ID
			}
		}
		da.Epoch++
		b, _ := json.Marshal(da)
		tx.Put(kv.Key, b)
		return nil
	}))
}

// Reports from a DN (VDs) and a CN (controllers) of one DA merge; an
// object error shows as degraded with its message. (A fresh DA's
// controllers wait for its VDs: the error comes once they were built.)
func TestMonitorMergesReportsAndDegrades(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 2, 2)
	da := tc.createDA("da0", 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	eventually(t, func() bool {
		st := tc.da("da0").Status
		return st.Health == vda.HealthHealthy && len(st.Parts) == 4
	}, wait, 5*time.Millisecond)
	tc.dns[1].SetScript(func(req *agentpb.SyncRequest) (*agentpb.SyncReply, error) {
		r := okReply(req)
		for _, o := range r.Objects {
			if o.Kind == agentpb.Kind_KIND_VD {
				o.Ok, o.Error = false, "bdev_lvol_create: -28 No space left on device"
			}
		}
		return r, nil
	})
	tc.dns[1].SetInstance("restarted") // re-synced
	var bad vda.VD
	for _, vd := range da.VDs {
		if vd.DNName == tc.dns[1].Addr {
			bad = vd
		}
	}
	eventually(t, func() bool {
		st := tc.da("da0").Status
		return st.Health == vda.HealthDegraded && len(st.Parts) == 4
	}, wait, 5*time.Millisecond)
	st := tc.da("da0").Status
	require.Contains(t, st.ErrorMsg, "No space left")
	require.Equal(t, vda.HealthDegraded, st.Part(bad.ID).Health)
	for _, c := range da.Cntlrs {
		require.Equal(t, vda.HealthHealthy, st.Part(c.ID).Health)
	}
	require.True(t, strings.HasPrefix(st.ErrorMsg, "vd "))
}

// crashable fails every call while down, like a monitor process that
// died: its lease is never revoked, it expires.
type crashable struct {
	store.Store
	down atomic.Bool
}

var errCrashed = errors.New("test: monitor crashed")

func (c *crashable) Get(ctx context.Context, key string) (store.KV, error) {
	if c.down.Load() {
		return store.KV{}, errCrashed
	}
	return c.Store.Get(ctx, key)
}

func (c *crashable) List(ctx context.Context, prefix string, o store.ListOptions) (store.ListResult, error) {
	if c.down.Load() {
		return store.ListResult{}, errCrashed
	}
	return c.Store.List(ctx, prefix, o)
}

func (c *crashable) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	if c.down.Load() {
		return store.TxnResult{}, errCrashed
	}
	return c.Store.Txn(ctx, t)
}

func (c *crashable) KeepAlive(ctx context.Context, id store.LeaseID) error {
	if c.down.Load() {
		return errCrashed
	}
	return c.Store.KeepAlive(ctx, id)
}

func (c *crashable) Grant(ctx context.Context, ttl time.Duration) (store.LeaseID, error) {
	if c.down.Load() {
		return 0, errCrashed
	}
	return c.Store.Grant(ctx, ttl)
}

func (c *crashable) Revoke(ctx context.Context, id store.LeaseID) error {
	if c.down.Load() {
		return errCrashed
	}
	return c.Store.Revoke(ctx, id)
}

// Two monitors on one store split the nodes: each node is driven by
// exactly one of them. When one dies without revoking its lease, the
// survivor picks its nodes up once the lease expired.
func TestTwoMonitorsSplitNodesAndTakeOver(t *testing.T) {
	s := newMemStore(t)
	tc := newTestCluster(t, s, 4, 4)
	for _, name := range []string{"da0", "da1", "da2"} {
		tc.createDA(name, 2, 2)
	}
	snap, err := LoadSnapshot(context.Background(), s)
	require.NoError(t, err)
	ids := map[string]string{} // agent address -> node ID
	for _, np := range Build(snap).Nodes {
		ids[np.Name] = np.ID
	}
	// Node IDs are random: name the second monitor so that both own nodes.
	nameB := ""
	for i := 0; nameB == "" && i < 100; i++ {
		cand := fmt.Sprint("b", i)
		owners := map[string]int{}
		for _, ag := range tc.all() {
			owners[Owner([]string{"a", cand}, ids[ag.Addr])]++
		}
		if owners["a"] > 0 && owners[cand] > 0 {
			nameB = cand
		}
	}
	require.NotEmpty(t, nameB, "the test needs nodes on both monitors")
	crashA := &crashable{Store: s}
	cfgA, cfgB := testConfig(crashA, "a"), testConfig(s, nameB)
	cfgA.ResyncInterval, cfgB.ResyncInterval = 50*time.Millisecond, 50*time.Millisecond
	a, stopA := startMonitor(t, cfgA)
	b, _ := startMonitor(t, cfgB)
	eventually(t, func() bool {
		return len(a.Membership().Members()) == 2 && len(b.Membership().Members()) == 2
	}, wait, 5*time.Millisecond)

	// Once every node heard from its owner (pushes a monitor started while
	// it still thought itself alone have landed by then), each node hears
	// from its owner only; periodic resyncs push every node.
	heardFromOwner := func(mark int64) bool {
		for _, ag := range tc.all() {
			want, ok := Owner([]string{"a", nameB}, ids[ag.Addr]), false
			for _, r := range after(ag.Records(), mark) {
				ok = ok || r.Monitor == want
			}
			if !ok {
				return false
			}
		}
		return true
	}
	mark := agenttest.LastSeq()
	eventually(t, func() bool { return heardFromOwner(mark) }, wait, 5*time.Millisecond)
	mark = agenttest.LastSeq()
	eventually(t, func() bool { return heardFromOwner(mark) }, wait, 5*time.Millisecond)
	for _, ag := range tc.all() {
		want := Owner([]string{"a", nameB}, ids[ag.Addr])
		for _, r := range after(ag.Records(), mark) {
			require.Equal(t, want, r.Monitor, "node %s driven by %s", ag.Addr, r.Monitor)
		}
	}

	// a crashes: no revoke, its lease expires. Its last pushes may still be
	// on their way when it has stopped (a cancelled call can reach its
	// server later), so b drives every node once before the check: a push
	// of a that late would be later than a's whole lease.
	crashA.down.Store(true)
	stopA()
	takenOver := func(mark int64) bool {
		for _, ag := range tc.all() {
			if !slices.ContainsFunc(after(ag.Records(), mark), func(r agenttest.SyncRecord) bool { return r.Monitor == nameB }) {
				return false
			}
		}
		return true
	}
	mark = agenttest.LastSeq()
	eventually(t, func() bool { return takenOver(mark) }, wait, 5*time.Millisecond)
	mark = agenttest.LastSeq()
	eventually(t, func() bool { return takenOver(mark) }, wait, 5*time.Millisecond)
	for _, ag := range tc.all() {
		for _, r := range after(ag.Records(), mark) {
			require.Equal(t, nameB, r.Monitor)
		}
	}
	tc.createDA("da3", 2, 2)
	eventually(t, func() bool { return tc.allConverged(tc.all()...) }, wait, 5*time.Millisecond)
}

func after(recs []agenttest.SyncRecord, mark int64) []agenttest.SyncRecord {
	var out []agenttest.SyncRecord
	for _, r := range recs {
		if r.Seq > mark {
			out = append(out, r)
		}
	}
	return out
}
