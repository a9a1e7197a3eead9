package vda

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/alloc"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/memstore"
)

func memStore(t *testing.T) store.Store {
	s, err := memstore.New(memstore.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func putJSON(t *testing.T, s store.Store, key string, v any) {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	_, err = s.Txn(context.Background(), store.Txn{Ops: []store.Op{{Key: key, Value: b}}})
	require.NoError(t, err)
}

func deleteKey(t *testing.T, s store.Store, key string) {
	_, err := s.Txn(context.Background(), store.Txn{Ops: []store.Op{{Key: key, Delete: true}}})
	require.NoError(t, err)
}

// mutator makes random changes to DNs, PDs and CNs (specs and statuses),
// straight in the store.
type mutator struct {
	t   *testing.T
	s   store.Store
	rnd *rand.Rand
}

func (m *mutator) step() {
	r := m.rnd
	dn := fmt.Sprintf("dn%d", r.IntN(12))
	loc := fmt.Sprintf("rack%d", r.IntN(3))
	switch r.IntN(9) {
	case 0, 1:
		putJSON(m.t, m.s, KeyDN(dn), DiskNode{ID: dn, Name: dn, Location: loc, Offline: r.IntN(6) == 0})
	case 2, 3, 4:
		pd := fmt.Sprintf("pd%d", r.IntN(4))
		size := uint64(64+r.IntN(4)*64) << 20
		alloc := uint64(r.IntN(int(size>>20))) << 20
		putJSON(m.t, m.s, KeyPD(dn, pd), PhysicalDisk{ID: dn + pd, Name: pd, DNName: dn,
			Conf: PDConf{Type: PDMalloc, SizeBytes: size}, AllocatedBytes: alloc, Offline: r.IntN(8) == 0})
	case 5:
		pd := fmt.Sprintf("pd%d", r.IntN(4))
		st := Status{Health: HealthHealthy}
		if r.IntN(3) == 0 {
			st.Health = HealthFailed
		}
		if r.IntN(2) == 0 {
			st.TotalBytes = uint64(32+r.IntN(200)) << 20
		}
		putJSON(m.t, m.s, KeyStatus(KeyPD(dn, pd)), st)
	case 6:
		cn := fmt.Sprintf("cn%d", r.IntN(8))
		putJSON(m.t, m.s, KeyCN(cn), ControllerNode{ID: cn, Name: cn, Location: loc, CntlrCount: r.IntN(5), Offline: r.IntN(6) == 0})
	case 7:
		health := HealthHealthy
		if r.IntN(3) == 0 {
			health = HealthFailed
		}
		if r.IntN(2) == 0 {
			putJSON(m.t, m.s, KeyStatus(KeyDN(dn)), Status{Health: health})
		} else {
			putJSON(m.t, m.s, KeyStatus(KeyCN(fmt.Sprintf("cn%d", r.IntN(8)))), Status{Health: health})
		}
	case 8:
		switch r.IntN(3) {
		case 0:
			deleteKey(m.t, m.s, KeyDN(dn))
		case 1:
			pd := KeyPD(dn, fmt.Sprintf("pd%d", r.IntN(4)))
			deleteKey(m.t, m.s, pd)
			deleteKey(m.t, m.s, KeyStatus(pd))
		default:
			deleteKey(m.t, m.s, KeyCN(fmt.Sprintf("cn%d", r.IntN(8))))
		}
	}
}

// dump describes the cache's content and index, for comparisons.
func (c *candCache) dump() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.dns {
		out = append(out, fmt.Sprintf("dn %s present=%v %+v status=%+v idx=%v/%d", d.name, d.present, d.spec, d.status, d.idxLoc, d.idxBucket))
		for _, p := range d.pds {
			out = append(out, fmt.Sprintf("pd %s/%s present=%v %+v status=%+v bucket=%d", d.name, p.name, p.present, p.spec, p.status, p.bucket))
		}
	}
	for _, n := range c.cns {
		out = append(out, fmt.Sprintf("cn %s present=%v %+v status=%+v idx=%v/%v/%d", n.name, n.present, n.spec, n.status, n.indexed, n.idxLoc, n.idxLoad))
	}
	slices.Sort(out)
	return out
}

// checkIndex compares the index with what it must hold, computed from
// scratch.
func (c *candCache) checkIndex(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.dns {
		best := -1
		for _, p := range d.pds {
			b := pdBucket(p)
			require.Equal(t, b, p.bucket, "pd %s/%s", d.name, p.name)
			for k := range nBuckets {
				_, in := d.disks[k].pos[p]
				require.Equal(t, k == b, in, "pd %s/%s in bucket %d", d.name, p.name, k)
			}
			best = max(best, b)
		}
		if !d.available() {
			best = -1
		}
		require.Equal(t, best, d.idxBucket, "dn %s", d.name)
		for loc, lp := range c.pdLocs {
			for k := range nBuckets {
				_, in := lp.nodes[k].pos[d]
				require.Equal(t, loc == (shareLoc{loc: d.spec.Location, avoid: d.avoid}) && k == best, in, "dn %s in %v/%d", d.name, loc, k)
			}
		}
	}
	for _, n := range c.cns {
		on := n.present && !n.spec.Offline && n.status.Health != HealthFailed
		require.Equal(t, on, n.indexed, "cn %s", n.name)
		for loc, lc := range c.cnLocs {
			require.True(t, slices.IsSorted(lc.loads))
			require.Len(t, lc.loads, len(lc.byLoad))
			for load, set := range lc.byLoad {
				require.NotEmpty(t, set.items)
				_, in := set.pos[n]
				require.Equal(t, on && loc == (shareLoc{loc: n.spec.Location, avoid: n.avoid}) && load == n.spec.CntlrCount+n.pend, in, "cn %s", n.name)
			}
		}
	}
}

// waitCaughtUp waits until the cache has applied the store's last change.
func waitCaughtUp(t *testing.T, s store.Store, c *candCache) {
	rev, err := s.Revision(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.waitRev(ctx, rev))
}

// TestCandCacheFollowsStore: after random changes, the watch-fed cache
// holds what a fresh load reads, and its index is what it must be.
func TestCandCacheFollowsStore(t *testing.T) {
	s := memStore(t)
	m := &mutator{t: t, s: s, rnd: rand.New(rand.NewPCG(1, 2))}
	for range 50 {
		m.step()
	}
	c, err := newCandCache(context.Background(), s, hclog.NewNullLogger(), "")
	require.NoError(t, err)
	t.Cleanup(c.stop)
	for range 20 {
		for range 25 {
			m.step()
		}
		waitCaughtUp(t, s, c)
		c.checkIndex(t)
		fresh, err := newCandCache(context.Background(), s, hclog.NewNullLogger(), "")
		require.NoError(t, err)
		fresh.stop()
		require.Equal(t, fresh.dump(), c.dump())
	}
}

// failingWatchStore fails the first watch (as a compaction does) when
// kill is closed.
type failingWatchStore struct {
	store.Store
	once    sync.Once
	kill    chan struct{}
	watches chan struct{}
}

type failingWatcher struct {
	store.Watcher
	ch chan store.WatchResponse
}

func (w *failingWatcher) Events() <-chan store.WatchResponse { return w.ch }

func (s *failingWatchStore) Watch(ctx context.Context, prefix string, from int64) (store.Watcher, error) {
	w, err := s.Store.Watch(ctx, prefix, from)
	if err != nil {
		return nil, err
	}
	s.watches <- struct{}{}
	first := false
	s.once.Do(func() { first = true })
	if !first {
		return w, nil
	}
	fw := &failingWatcher{Watcher: w, ch: make(chan store.WatchResponse)}
	go func() {
		defer close(fw.ch)
		for {
			select {
			case <-s.kill:
				fw.ch <- store.WatchResponse{Err: store.ErrCompacted}
				return
			case resp, ok := <-w.Events():
				if !ok {
					return
				}
				fw.ch <- resp
			}
		}
	}()
	return fw, nil
}

// TestCandCacheReloadsAfterWatchFailure: changes made while the watch is
// down (deletes too) reach the cache through the reload.
func TestCandCacheReloadsAfterWatchFailure(t *testing.T) {
	mem := memStore(t)
	s := &failingWatchStore{Store: mem, kill: make(chan struct{}), watches: make(chan struct{}, 10)}
	m := &mutator{t: t, s: mem, rnd: rand.New(rand.NewPCG(3, 4))}
	for range 100 {
		m.step()
	}
	c, err := newCandCache(context.Background(), s, hclog.NewNullLogger(), "")
	require.NoError(t, err)
	t.Cleanup(c.stop)
	<-s.watches
	// Changes the failing watch will not deliver: the cache must not see
	// them until it reloads.
	before := c.dump()
	close(s.kill)
	for range 100 {
		m.step()
	}
	<-s.watches // the second watch: the reload is done
	waitCaughtUp(t, mem, c)
	fresh, err := newCandCache(context.Background(), mem, hclog.NewNullLogger(), "")
	require.NoError(t, err)
	fresh.stop()
	require.NotEqual(t, before, fresh.dump(), "the changes changed something")
	require.Equal(t, fresh.dump(), c.dump())
	c.checkIndex(t)
}

// rankProfile describes a placement by what alloc.Default ranks: the
// buckets of its disks (one less if avoided), how many locations and
// nodes they span, and the loads of its CNs (in eighths, with an eighth
// more if avoided past alloc.AvoidMinLoad).
func rankProfile(t *testing.T, p Placement, cands Candidates) string {
	var buckets, loads []int
	locs, nodes := map[string]bool{}, map[string]bool{}
	for _, pd := range p.PDs {
		b := alloc.FreeBucket(pd.FreeBytes(), pd.CapacityBytes())
		if cands.AvoidDNs[pd.DNName] {
			b--
		}
		buckets = append(buckets, b)
		locs[cands.DNs[pd.DNName].Location] = true
		nodes[pd.DNName] = true
	}
	cnLocs := map[string]bool{}
	for _, cn := range p.CNs {
		l := cn.CntlrCount * alloc.AvoidDivisor
		if cands.AvoidCNs[cn.Name] && cn.CntlrCount >= alloc.AvoidMinLoad {
			l += cn.CntlrCount
		}
		loads = append(loads, l)
		cnLocs[cn.Location] = true
	}
	slices.Sort(buckets)
	slices.Sort(loads)
	return fmt.Sprintf("disk buckets %v in %d locations on %d nodes; cn loads %v in %d locations", buckets, len(locs), len(nodes), loads, len(cnLocs))
}

// TestBoundedPlacementRanksAsFull: on random clusters, what
// alloc.Default chooses among the cache's bounded sample ranks exactly as
// what it chooses among every candidate (same free-space buckets, as many
// locations and nodes, same CN loads), also with some DNs and CNs in
// other placers' shares (avoided).
func TestBoundedPlacementRanksAsFull(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for round := range 45 {
		s := memStore(t)
		locs, dns, pdsPerDN, cns := 1+rnd.IntN(5), 1+rnd.IntN(40), 1+rnd.IntN(6), 1+rnd.IntN(30)
		for i := range dns {
			dn := fmt.Sprintf("dn%d", i)
			putJSON(t, s, KeyDN(dn), DiskNode{ID: dn, Name: dn, Location: fmt.Sprintf("rack%d", rnd.IntN(locs)), Offline: rnd.IntN(10) == 0})
			for j := range pdsPerDN {
				pd := fmt.Sprintf("pd%d", j)
				size := uint64(1+rnd.IntN(8)) << 30
				putJSON(t, s, KeyPD(dn, pd), PhysicalDisk{ID: dn + pd, Name: pd, DNName: dn,
					Conf: PDConf{Type: PDMalloc, SizeBytes: size}, AllocatedBytes: uint64(rnd.Int64N(int64(size)))})
			}
		}
		for i := range cns {
			cn := fmt.Sprintf("cn%d", i)
			load := rnd.IntN(6)
			if round%3 == 2 {
				load = alloc.AvoidMinLoad - 4 + rnd.IntN(24)
			}
			putJSON(t, s, KeyCN(cn), ControllerNode{ID: cn, Name: cn, Location: fmt.Sprintf("rack%d", rnd.IntN(locs)), CntlrCount: load})
		}
		c, err := newCandCache(context.Background(), s, hclog.NewNullLogger(), "")
		require.NoError(t, err)
		c.stop()
		if round%3 == 2 {
			// Other placers' shares, as share marks them.
			c.mu.Lock()
			for _, d := range c.dns {
				d.avoid = rnd.IntN(2) == 0
				c.reindexDN(d)
			}
			for _, n := range c.cns {
				n.avoid = rnd.IntN(2) == 0
				c.reindexCN(n)
			}
			c.mu.Unlock()
			c.checkIndex(t)
		}
		if round%2 == 1 {
			// Pending reservations of this Cluster count too.
			c.mu.Lock()
			var r reservation
			for _, d := range c.dns {
				for _, p := range d.pds {
					if rnd.IntN(3) == 0 {
						r.pds = append(r.pds, p)
					}
				}
			}
			for _, n := range c.cns {
				if rnd.IntN(3) == 0 {
					r.cns = append(r.cns, n)
				}
			}
			r.bytes = 256 << 20
			c.reserve(&r)
			c.mu.Unlock()
		}
		for k := range 20 {
			req := PlacementRequest{Name: fmt.Sprintf("da%d", k), StripeCount: 1 + rnd.IntN(6), CntlrCount: 1 + rnd.IntN(3),
				VDSizeBytes: uint64(1+rnd.IntN(64)) << 20, Attempt: rnd.IntN(3)}
			c.mu.Lock()
			all, bounded := c.allCandidates(), c.boundedCandidates(req)
			pFast, errFast := c.boundedPlace(req)
			c.mu.Unlock()
			require.LessOrEqual(t, len(bounded.PDs), 2*locs*sampleNodes(req.StripeCount)*sampleDisks(req.StripeCount))
			require.LessOrEqual(t, len(bounded.CNs), 2*locs*sampleCNs(req.CntlrCount))
			pFull, errFull := DefaultPlacer{}.Place(req, all)
			pBounded, errBounded := DefaultPlacer{}.Place(req, bounded)
			// boundedPlace is DefaultPlacer over the sample, without the copies.
			if errBounded != nil {
				require.Error(t, errFast, "round %d request %d", round, k)
				require.Equal(t, errBounded.Error(), errFast.Error(), "round %d request %d", round, k)
			} else {
				require.NoError(t, errFast)
				require.Equal(t, pBounded, pFast, "round %d request %d", round, k)
			}
			if errFull != nil {
				require.ErrorIs(t, errFull, ErrResourceExhausted)
				require.Error(t, errBounded, "round %d request %d", round, k)
				continue
			}
			// The sample may hold too few disks of the size asked for
			// (CreateDiskArray then shows every candidate), never a worse
			// choice.
			if errBounded != nil {
				require.ErrorIs(t, errBounded, ErrResourceExhausted)
				continue
			}
			require.Equal(t, rankProfile(t, pFull, all), rankProfile(t, pBounded, all), "round %d request %d %+v", round, k, req)
		}
	}
}
