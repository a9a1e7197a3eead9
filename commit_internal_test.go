package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
)

// Generous limits of require.Eventually (the machine may be busy).
const (
	testWait = 30 * time.Second
	testTick = time.Millisecond
)

// twoDiskCache is a cache over a store with two DNs of one 64 GiB PD
// each and one CN: every 2-VD, 1-controller DA uses both PDs and the CN,
// so concurrent creates share every PD and CN they write.
func twoDiskCache(t *testing.T) (store.Store, *candCache) {
	s := memStore(t)
	for i := range 2 {
		dn := fmt.Sprintf("dn%d", i)
		putJSON(t, s, KeyDN(dn), DiskNode{ID: dn, Name: dn, Location: dn})
		putJSON(t, s, KeyPD(dn, "pd0"), PhysicalDisk{ID: dn + "pd0", Name: "pd0", DNName: dn, DNID: dn,
			Conf: PDConf{Type: PDMalloc, SizeBytes: 64 << 30}})
	}
	putJSON(t, s, KeyCN("cn0"), ControllerNode{ID: "cn0", Name: "cn0"})
	c, err := newCandCache(context.Background(), s, hclog.NewNullLogger(), "")
	require.NoError(t, err)
	t.Cleanup(c.stop)
	return s, c
}

// queueCreate places a DA of name on c and queues its transaction (it is
// not sent until someone commits).
func queueCreate(t *testing.T, c *candCache, name string) (*commitReq, uint64) {
	spec := DiskArraySpec{Name: name, CntlrCount: 1, SizeBytes: 32 << 20, Conf: DAConf{StripeCount: 2, StripeSizeKB: 64}}
	l, err := spec.validate()
	require.NoError(t, err)
	req := PlacementRequest{Name: name, StripeCount: 2, CntlrCount: 1, VDSizeBytes: l.VDSizeBytes}
	r, err := c.place(context.Background(), DefaultPlacer{}, true, req, func(pl *plan) (store.Txn, error) {
		_, txn, err := pl.txn(spec, l)
		return txn, err
	})
	require.NoError(t, err)
	return r, l.VDSizeBytes
}

// checkCounters compares the stored PDs and CN with das DAs of vdBytes
// VDs each, and the cache with the store.
func checkCounters(t *testing.T, s store.Store, c *candCache, das int, vdBytes uint64) {
	ctx := context.Background()
	for i := range 2 {
		kv, err := s.Get(ctx, KeyPD(fmt.Sprintf("dn%d", i), "pd0"))
		require.NoError(t, err)
		var pd PhysicalDisk
		require.NoError(t, json.Unmarshal(kv.Value, &pd))
		require.Equal(t, das, pd.VDCount, kv.Key)
		require.Equal(t, uint64(das)*vdBytes, pd.AllocatedBytes, kv.Key)
	}
	kv, err := s.Get(ctx, KeyCN("cn0"))
	require.NoError(t, err)
	var cn ControllerNode
	require.NoError(t, json.Unmarshal(kv.Value, &cn))
	require.Equal(t, das, cn.CntlrCount)
	res, err := s.List(ctx, PrefixDA, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, res.KVs, das)

	rev, err := s.Revision(ctx)
	require.NoError(t, err)
	require.NoError(t, c.waitRev(ctx, rev))
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Zero(t, c.pending)
	require.Empty(t, c.queue)
	for _, d := range c.dns {
		p := d.pds["pd0"]
		require.Equal(t, das, p.spec.VDCount)
		require.Zero(t, p.pendVDs)
	}
	require.Equal(t, das, c.cns["cn0"].spec.CntlrCount)
	require.Zero(t, c.cns["cn0"].pend)
}

// TestBatchSharesKeys: two creates on the same PDs and CN commit in one
// transaction that adds both to each.
func TestBatchSharesKeys(t *testing.T) {
	s, c := twoDiskCache(t)
	a, vd := queueCreate(t, c, "a")
	b, _ := queueCreate(t, c, "b")
	ra := c.commit(context.Background(), a)
	rb := c.commit(context.Background(), b)
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	require.True(t, ra.ok)
	require.True(t, rb.ok)
	require.Equal(t, ra.rev, rb.rev, "one transaction")
	require.EqualValues(t, 1, c.batches.Load())
	require.Zero(t, c.fallbacks.Load())
	checkCounters(t, s, c, 2, vd)
}

// TestBatchMemberGuardFails: a batch in which one member's guard fails
// (its name was taken) commits nothing; then each member commits alone,
// so the other one succeeds and the counters hold exactly it.
func TestBatchMemberGuardFails(t *testing.T) {
	s, c := twoDiskCache(t)
	a, vd := queueCreate(t, c, "a")
	b, _ := queueCreate(t, c, "b")
	putJSON(t, s, KeyDA("a"), DiskArray{ID: "x", Name: "a"})
	ra := c.commit(context.Background(), a)
	rb := c.commit(context.Background(), b)
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	require.False(t, ra.ok)
	require.Positive(t, ra.rev)
	require.True(t, rb.ok)
	require.EqualValues(t, 1, c.batches.Load())
	require.EqualValues(t, 1, c.fallbacks.Load())
	// The DA "a" the store had, and "b" with its VDs.
	checkCountersDAs(t, s, c, 1, 2, vd)
}

// checkCountersDAs is checkCounters with stored DAs that hold no VDs
// (written straight into the store) among the DA keys.
func checkCountersDAs(t *testing.T, s store.Store, c *candCache, das, keys int, vdBytes uint64) {
	ctx := context.Background()
	res, err := s.List(ctx, PrefixDA, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, res.KVs, keys)
	for _, kv := range res.KVs {
		if kv.Key == KeyDA("a") {
			deleteKey(t, s, kv.Key)
		}
	}
	checkCounters(t, s, c, das, vdBytes)
}

// TestBatchDefersOtherRevision: a create that guards a key at another
// revision than the batch waits for the next transaction (its guards
// could never hold together with the batch's).
func TestBatchDefersOtherRevision(t *testing.T) {
	s, c := twoDiskCache(t)
	ctx := context.Background()
	a, vd := queueCreate(t, c, "a")
	// Someone else changes a PD that a guards; b sees the change.
	putJSON(t, s, KeyPD("dn0", "pd0"), PhysicalDisk{ID: "dn0pd0", Name: "pd0", DNName: "dn0", DNID: "dn0",
		Description: "changed", Conf: PDConf{Type: PDMalloc, SizeBytes: 64 << 30}})
	rev, err := s.Revision(ctx)
	require.NoError(t, err)
	require.NoError(t, c.waitRev(ctx, rev))
	b, _ := queueCreate(t, c, "b")
	ra := c.commit(ctx, a)
	rb := c.commit(ctx, b)
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	require.False(t, ra.ok, "a's guard is stale")
	require.True(t, rb.ok)
	require.Zero(t, c.batches.Load(), "a and b never shared a transaction")
	checkCounters(t, s, c, 1, vd)
}

// TestBatchSplitsAtStoreLimits: more queued creates than one transaction
// may carry commit in several, all of them.
func TestBatchSplitsAtStoreLimits(t *testing.T) {
	s, c := twoDiskCache(t)
	const n = 150 // 5 shared guards + 150 names > store.MaxTxnOps
	rs := make([]*commitReq, n)
	var vd uint64
	for i := range n {
		rs[i], vd = queueCreate(t, c, fmt.Sprintf("da%03d", i))
	}
	var wg sync.WaitGroup
	var ok atomic.Int64
	for _, r := range rs {
		wg.Go(func() {
			res := c.commit(context.Background(), r)
			if res.err == nil && res.ok {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, n, ok.Load())
	require.EqualValues(t, 2, c.batches.Load())
	require.Zero(t, c.fallbacks.Load())
	checkCounters(t, s, c, n, vd)
}

// TestCommitCancelledWhileQueued: a create whose context ends before its
// transaction is sent leaves the queue and releases its reservation.
func TestCommitCancelledWhileQueued(t *testing.T) {
	s, c := twoDiskCache(t)
	a, vd := queueCreate(t, c, "a")
	c.mu.Lock()
	c.committing = true // as if a committer were busy
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := c.commit(ctx, a)
	require.ErrorIs(t, res.err, context.Canceled)
	c.mu.Lock()
	c.committing = false
	c.mu.Unlock()
	checkCounters(t, s, c, 0, vd)
}

// gatedRevisionStore blocks the first Revision call until release is
// closed, and counts the calls.
type gatedRevisionStore struct {
	store.Store
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func (s *gatedRevisionStore) Revision(ctx context.Context) (int64, error) {
	if s.calls.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	return s.Store.Revision(ctx)
}

// TestRevGateReadsAfterCall: creates that ask for the revision while a
// read is in flight share one read that starts after that one, and see
// every write completed before they asked.
func TestRevGateReadsAfterCall(t *testing.T) {
	s := &gatedRevisionStore{Store: memStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	var g revGate
	ctx := context.Background()
	first := make(chan int64, 1)
	go func() {
		rev, err := g.revision(ctx, s)
		if err != nil {
			rev = -1
		}
		first <- rev
	}()
	<-s.entered
	putJSON(t, s.Store, KeyCN("cn0"), ControllerNode{ID: "cn0", Name: "cn0"})
	written, err := s.Store.Revision(ctx)
	require.NoError(t, err)
	const n = 8
	revs := make(chan int64, n)
	for range n {
		go func() {
			rev, err := g.revision(ctx, s)
			if err != nil {
				rev = -1
			}
			revs <- rev
		}()
	}
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.next != nil && len(g.next.waiters) == n
	}, testWait, testTick)
	close(s.release)
	require.GreaterOrEqual(t, <-first, int64(0))
	for range n {
		require.GreaterOrEqual(t, <-revs, written)
	}
	require.EqualValues(t, 2, s.calls.Load(), "the waiters shared one read")
}

// TestRevGateWaiterCancelled: a waiter whose context ends returns its
// error; the read goes on for the others.
func TestRevGateWaiterCancelled(t *testing.T) {
	s := &gatedRevisionStore{Store: memStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	var g revGate
	go func() { _, _ = g.revision(context.Background(), s) }()
	<-s.entered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := g.revision(ctx, s)
		done <- err
	}()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.next != nil && len(g.next.waiters) == 1
	}, testWait, testTick)
	cancel()
	require.True(t, errors.Is(<-done, context.Canceled))
	close(s.release)
	rev, err := g.revision(context.Background(), s)
	require.NoError(t, err)
	require.Positive(t, rev)
}

// TestBatchDropsStaleMember: a batch that fails because another writer
// changed a PD only one member chose commits the others together, once
// the cache has seen that change; the stale member places again.
func TestBatchDropsStaleMember(t *testing.T) {
	s := &countingTxnStore{Store: memStore(t)}
	ctx := context.Background()
	for i := range 4 {
		dn := fmt.Sprintf("dn%d", i)
		putJSON(t, s, KeyDN(dn), DiskNode{ID: dn, Name: dn, Location: dn})
		putJSON(t, s, KeyPD(dn, "pd0"), PhysicalDisk{ID: dn + "pd0", Name: "pd0", DNName: dn, DNID: dn,
			Conf: PDConf{Type: PDMalloc, SizeBytes: 64 << 30}})
	}
	putJSON(t, s, KeyCN("cn0"), ControllerNode{ID: "cn0", Name: "cn0"})
	c, err := newCandCache(ctx, s, hclog.NewNullLogger(), "")
	require.NoError(t, err)
	t.Cleanup(c.stop)
	a, _ := queueCreate(t, c, "a")
	b, _ := queueCreate(t, c, "b")
	var only *PhysicalDisk
	for _, pd := range a.pl.pds {
		if !slices.ContainsFunc(b.pl.pds, func(x PhysicalDisk) bool { return x.DNName == pd.DNName }) {
			only = &pd
			break
		}
	}
	require.NotNil(t, only, "a and b placed on the same PDs")
	changed := *only
	changed.Description = "changed"
	putJSON(t, s, KeyPD(changed.DNName, changed.Name), changed)

	before := s.txns.Load()
	ra := c.commit(ctx, a)
	rb := c.commit(ctx, b)
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	require.False(t, ra.ok)
	require.True(t, ra.stale)
	require.True(t, rb.ok)
	require.EqualValues(t, 1, c.batches.Load())
	require.EqualValues(t, 1, c.fallbacks.Load())
	require.EqualValues(t, 2, s.txns.Load()-before, "the batch, then b without a")

	res, err := s.List(ctx, PrefixPD, store.ListOptions{})
	require.NoError(t, err)
	vds := 0
	for _, kv := range res.KVs {
		var pd PhysicalDisk
		require.NoError(t, json.Unmarshal(kv.Value, &pd))
		vds += pd.VDCount
	}
	require.Equal(t, 2, vds, "b's VDs only")
	kv, err := s.Get(ctx, KeyCN("cn0"))
	require.NoError(t, err)
	var cn ControllerNode
	require.NoError(t, json.Unmarshal(kv.Value, &cn))
	require.Equal(t, 1, cn.CntlrCount)
	_, err = s.Get(ctx, KeyDA("a"))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.Get(ctx, KeyDA("b"))
	require.NoError(t, err)
}

// countingTxnStore counts Txn calls.
type countingTxnStore struct {
	store.Store
	txns atomic.Int64
}

func (s *countingTxnStore) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	s.txns.Add(1)
	return s.Store.Txn(ctx, t)
}

// gatedTxnStore blocks the first Txn call until release is closed.
type gatedTxnStore struct {
	store.Store
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func (s *gatedTxnStore) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	if s.calls.Add(1) == 1 {
		close(s.entered)
		<-s.release
	}
	return s.Store.Txn(ctx, t)
}

// TestRebaseOntoCommitInFlight: a create placed on the PDs and CN of a
// create whose transaction is in flight is rebased onto its write when it
// commits, and then commits without a retry.
func TestRebaseOntoCommitInFlight(t *testing.T) {
	mem, _ := twoDiskCache(t) // its cache is not used
	s := &gatedTxnStore{Store: mem, entered: make(chan struct{}), release: make(chan struct{})}
	ctx := context.Background()
	c, err := newCandCache(ctx, s, hclog.NewNullLogger(), "")
	require.NoError(t, err)
	t.Cleanup(c.stop)
	a, vd := queueCreate(t, c, "a")
	ra := make(chan commitRes, 1)
	go func() { ra <- c.commit(ctx, a) }()
	<-s.entered
	b, _ := queueCreate(t, c, "b") // guards what a is about to change
	close(s.release)
	require.True(t, (<-ra).ok)
	rb := c.commit(ctx, b)
	require.NoError(t, rb.err)
	require.True(t, rb.ok, "b was rebased onto a")
	require.EqualValues(t, 2, s.calls.Load(), "no retry")
	require.Zero(t, c.batches.Load())
	checkCounters(t, mem, c, 2, vd)
}

// stalledWatchStore's watches deliver nothing until the test ends.
type stalledWatchStore struct {
	store.Store
}

type stalledWatcher struct{ ch chan store.WatchResponse }

func (w stalledWatcher) Events() <-chan store.WatchResponse { return w.ch }
func (w stalledWatcher) Close() error                       { return nil }

func (stalledWatchStore) Watch(context.Context, string, int64) (store.Watcher, error) {
	return stalledWatcher{ch: make(chan store.WatchResponse)}, nil
}

// TestCommitAdvancesCache: a create's own transaction, at the revision
// right after the cache's, brings the cache to that revision without the
// watch (a create that read it need not wait); a transaction after a
// change the cache has not seen does not.
func TestCommitAdvancesCache(t *testing.T) {
	mem, _ := twoDiskCache(t)
	s := stalledWatchStore{Store: mem}
	ctx := context.Background()
	c, err := newCandCache(ctx, s, hclog.NewNullLogger(), "")
	require.NoError(t, err)
	t.Cleanup(c.stop)
	r, _ := queueCreate(t, c, "da0")
	res := c.commit(ctx, r)
	require.True(t, res.ok)
	require.Equal(t, res.rev, cacheRev(c), "the cache has everything up to its own commit")
	rev, err := s.Revision(ctx)
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, testWait)
	defer cancel()
	require.NoError(t, c.waitRev(wctx, rev), "no wait for the watch")

	// A write the cache does not know of (its watch is stalled), then a
	// create: the cache has its writes but not everything before them.
	putJSON(t, s, KeyCN("cn1"), ControllerNode{ID: "cn1", Name: "cn1"})
	r, _ = queueCreate(t, c, "da1")
	res = c.commit(ctx, r)
	require.True(t, res.ok)
	require.Less(t, cacheRev(c), res.rev-1, "a change before the commit is not in the cache")
}

func cacheRev(c *candCache) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rev
}
