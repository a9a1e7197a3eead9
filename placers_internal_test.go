package vda

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/alloc"
	"github.com/vda-io/vda/store"
)

// sharedStore is a store with 40 DNs of 2 PDs (64 GiB malloc) each and 20
// CNs, both in 8 locations, every CN hosting cntlrs controllers already.
func sharedStore(t *testing.T, cntlrs int) store.Store {
	s := memStore(t)
	for i := range 40 {
		dn := fmt.Sprintf("dn%02d", i)
		putJSON(t, s, KeyDN(dn), DiskNode{ID: dn, Name: dn, Location: fmt.Sprintf("rack%d", i%8)})
		for k := range 2 {
			pd := fmt.Sprintf("pd%d", k)
			putJSON(t, s, KeyPD(dn, pd), PhysicalDisk{ID: dn + pd, Name: pd, DNName: dn, DNID: dn,
				Conf: PDConf{Type: PDMalloc, SizeBytes: 64 << 30}})
		}
	}
	for i := range 20 {
		cn := fmt.Sprintf("cn%02d", i)
		putJSON(t, s, KeyCN(cn), ControllerNode{ID: cn, Name: cn, Location: fmt.Sprintf("rack%d", i%8), CntlrCount: cntlrs})
	}
	return s
}

// placerCache is a candidate cache with affinity a over s.
func placerCache(t *testing.T, s store.Store, a string) *candCache {
	c, err := newCandCache(context.Background(), s, hclog.NewNullLogger(), a)
	require.NoError(t, err)
	t.Cleanup(c.stop)
	return c
}

// waitPlacers waits until c has seen the registrations of placers.
func waitPlacers(t *testing.T, c *candCache, placers ...string) {
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range placers {
			if !c.placers[p] {
				return false
			}
		}
		return true
	}, testWait, testTick)
}

// avoided is what c avoids, under its lock, after share.
func avoided(c *candCache) (dns, cns map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.share()
	dns, cns = map[string]bool{}, map[string]bool{}
	for name, d := range c.dns {
		dns[name] = d.avoid
	}
	for name, n := range c.cns {
		cns[name] = n.avoid
	}
	return dns, cns
}

// TestPlacersShareOut: two Clusters' caches with affinities over one
// store deal the DNs and CNs out between them (each node avoided by
// exactly one, shares even in every location); once one stops (its
// registration revoked), the other avoids nothing; without an affinity a
// cache avoids nothing.
func TestPlacersShareOut(t *testing.T) {
	s := sharedStore(t, 0)
	a, b, plain := placerCache(t, s, "portal-a"), placerCache(t, s, "portal-b"), placerCache(t, s, "")
	for _, c := range []*candCache{a, b, plain} {
		waitPlacers(t, c, "portal-a", "portal-b")
	}

	aDNs, aCNs := avoided(a)
	bDNs, bCNs := avoided(b)
	for _, share := range []struct {
		what       string
		a, b       map[string]bool
		locOf      func(string) string
		n, perLocs int
	}{
		{"DN", aDNs, bDNs, func(name string) string { return a.dns[name].spec.Location }, 40, 5},
		{"CN", aCNs, bCNs, func(name string) string { return a.cns[name].spec.Location }, 20, 3},
	} {
		require.Len(t, share.a, share.n)
		own := map[string]int{} // location -> nodes of a's share
		all := map[string]int{}
		for name, avoidA := range share.a {
			require.NotEqual(t, avoidA, share.b[name], "%s %s is in exactly one share", share.what, name)
			all[share.locOf(name)]++
			if !avoidA {
				own[share.locOf(name)]++
			}
		}
		total := 0
		for loc, n := range all {
			require.InDelta(t, float64(n)/2, float64(own[loc]), 0.5, "%s share of a in %s", share.what, loc)
			total += own[loc]
		}
		require.InDelta(t, share.n/2, total, 1, "%s share of a", share.what)
	}
	pDNs, pCNs := avoided(plain)
	require.NotContains(t, pDNs, true)
	require.NotContains(t, pCNs, true)

	b.stop() // revokes its registration
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return !a.placers["portal-b"]
	}, testWait, testTick)
	aDNs, aCNs = avoided(a)
	require.NotContains(t, aDNs, true)
	require.NotContains(t, aCNs, true)
}

// queueDA places a DA of 2 VDs and 2 controllers on c and queues its
// transaction.
func queueDA(t *testing.T, c *candCache, name string) *commitReq {
	spec := DiskArraySpec{Name: name, CntlrCount: 2, SizeBytes: 32 << 20, Conf: DAConf{StripeCount: 2, StripeSizeKB: 64}}
	l, err := spec.validate()
	require.NoError(t, err)
	req := PlacementRequest{Name: name, StripeCount: 2, CntlrCount: 2, VDSizeBytes: l.VDSizeBytes}
	r, err := c.place(context.Background(), DefaultPlacer{}, true, req, func(pl *plan) (store.Txn, error) {
		_, txn, err := pl.txn(spec, l)
		return txn, err
	})
	require.NoError(t, err)
	return r
}

// racingCreates has two caches over s (with affinities aff[0] and aff[1],
// which may be empty) place batches of creates in lockstep: each round,
// both place 4 creates on what they know, then one commits its batch and
// the other commits its own (which of them goes first alternates). It
// returns the store transactions that failed a guard and the creates
// that lost their transaction (placed on a PD or CN the other's batch
// had just written).
func racingCreates(t *testing.T, s store.Store, aff [2]string) (failed, lost int) {
	cs := &conflictCountingStore{Store: s}
	var peers []string
	for _, a := range aff {
		if a != "" {
			peers = append(peers, a)
		}
	}
	caches := [2]*candCache{placerCache(t, cs, aff[0]), placerCache(t, cs, aff[1])}
	for _, c := range caches {
		waitPlacers(t, c, peers...)
	}
	ctx := context.Background()
	for round := range 20 {
		var queued [2][]*commitReq
		for k, c := range caches {
			waitCaughtUp(t, cs, c)
			for i := range 4 {
				queued[k] = append(queued[k], queueDA(t, c, fmt.Sprintf("r%02d-%d-%d", round, k, i)))
			}
		}
		for j := range 2 {
			k := (round + j) % 2
			for _, r := range queued[k] {
				res := caches[k].commit(ctx, r)
				require.NoError(t, res.err)
				if !res.ok {
					lost++
				}
			}
		}
	}
	return int(cs.failed.Load()), lost
}

// conflictCountingStore counts the transactions that failed a guard.
type conflictCountingStore struct {
	store.Store
	failed atomic.Int64
}

func (s *conflictCountingStore) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	res, err := s.Store.Txn(ctx, t)
	if err == nil && !res.Succeeded {
		s.failed.Add(1)
	}
	return res, err
}

// TestPlacersAvoidConflicts: two Clusters placing on one store at the
// same time lose transactions to each other when they have no affinity
// (both choose the least-loaded CNs and the emptiest PDs) or the same
// one, and none once each has its own (each keeps to its share), with
// CNs loaded past alloc.AvoidMinLoad.
func TestPlacersAvoidConflicts(t *testing.T) {
	failed, lost := racingCreates(t, sharedStore(t, alloc.AvoidMinLoad), [2]string{"", ""})
	t.Logf("no affinity: %d failed transactions, %d creates lost", failed, lost)
	require.Greater(t, lost, 20, "without affinities the Clusters collide")

	failed, lost = racingCreates(t, sharedStore(t, alloc.AvoidMinLoad), [2]string{"portal-a", "portal-a"})
	t.Logf("one affinity for both: %d failed transactions, %d creates lost", failed, lost)
	require.Greater(t, lost, 20, "with one affinity the Clusters collide")

	failed, lost = racingCreates(t, sharedStore(t, alloc.AvoidMinLoad), [2]string{"portal-a", "portal-b"})
	t.Logf("affinities: %d failed transactions, %d creates lost", failed, lost)
	require.Zero(t, failed)
	require.Zero(t, lost)
}

// TestPlacerStopsWithStore: when the store closes, the cache's watch ends
// and so does its registration (exited closes without stop).
func TestPlacerStopsWithStore(t *testing.T) {
	s := sharedStore(t, 0)
	c := placerCache(t, s, "portal-a")
	waitPlacers(t, c, "portal-a")
	require.NoError(t, s.Close())
	select {
	case <-c.exited:
	case <-time.After(testWait):
		t.Fatal("the cache and its registration outlived the store")
	}
}
