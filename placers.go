package vda

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vda-io/vda/store"
)

// Placers: Clusters with a Config.PlacementAffinity that share a store
// share its controller nodes out among themselves, so that their creates
// stop choosing the same least-loaded CNs and colliding on the CN records
// (each create writes its CNs' controller counts, and a transaction
// conditioned on a CN's revision fails if another portal wrote it first).
//
// Each such Cluster registers its affinity under PrefixPlacer, bound to a
// lease it keeps alive while its candidate cache runs, and its cache
// follows the registrations through its watch. The share of each placer
// is a pure function of the live registrations (its own always counted)
// and the nodes: the present CNs in order of location, then name, dealt
// out in turn to the placers in order of affinity, so shares are as even
// as the counts allow, in every location too; the same for the DNs (and
// their PDs). A Cluster marks the CNs of the others' shares
// alloc.Node.Avoid: alloc.Default ranks them as if they hosted an eighth
// more controllers, once they host alloc.AvoidMinLoad, so each Cluster
// fills its own share while loads stay within about an eighth of each
// other, and below that load placement is exactly as without an affinity
// (which is what tests and small clusters see). It marks the PDs of the
// others' DNs alloc.Disk.Avoid: ranked a sixteenth of their capacity
// fuller than they are. A Cluster alone on the store avoids nothing.
//
// It is a preference, never a guard: the transaction still decides, so a
// stale or missing registration (a portal that died, until its lease
// expires) costs at most the collisions there were without it.

// PrefixPlacer holds one key per Cluster that places with an affinity,
// bound to its lease: /vda/placers/<affinity>.
const PrefixPlacer = Prefix + "placers/"

// KeyPlacer is the registration key of placement affinity a.
func KeyPlacer(a string) string { return PrefixPlacer + a }

// MaxPlacementAffinityBytes bounds Config.PlacementAffinity.
const MaxPlacementAffinityBytes = 128

// placerTTL is the lease of a registration: a Cluster that stops without
// revoking it (a crash) keeps its share from the others for up to this
// long, which costs them collisions, nothing else.
const placerTTL = 10 * time.Second

func validateAffinity(a string) error {
	if a == "" {
		return nil
	}
	if len(a) > MaxPlacementAffinityBytes || strings.ContainsAny(a, "/\x00") {
		return fmt.Errorf("%w: config: PlacementAffinity %q: at most %d bytes, no '/' or NUL", ErrInvalidArgument, a, MaxPlacementAffinityBytes)
	}
	return validateText("PlacementAffinity", a, MaxPlacementAffinityBytes)
}

// register keeps the cache's affinity registered until ctx ends, then
// revokes the lease (best effort: it expires anyway).
func (c *candCache) register(ctx context.Context) {
	var lease store.LeaseID
	var pause time.Duration
	for {
		err := store.ErrLeaseNotFound
		if lease != store.NoLease {
			err = c.s.KeepAlive(ctx, lease)
		}
		if errors.Is(err, store.ErrLeaseNotFound) {
			lease, err = c.registerOnce(ctx)
		}
		wait := placerTTL / 3
		if err != nil && ctx.Err() == nil {
			pause = min(max(2*pause, 100*time.Millisecond), wait)
			wait = pause
			c.log.Debug("placement affinity: registration failed", "affinity", c.affinity, "err", err, "retry_in", wait)
		} else {
			pause = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if lease != store.NoLease {
				rctx, cancel := context.WithTimeout(context.Background(), placerTTL)
				_ = c.s.Revoke(rctx, lease)
				cancel()
			}
			return
		case <-t.C:
		}
	}
}

// registerOnce grants a lease and writes the registration under it.
func (c *candCache) registerOnce(ctx context.Context) (store.LeaseID, error) {
	lease, err := c.s.Grant(ctx, placerTTL)
	if err != nil {
		return store.NoLease, err
	}
	if _, err := c.s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: KeyPlacer(c.affinity), Value: []byte(c.affinity), Lease: lease}}}); err != nil {
		_ = c.s.Revoke(ctx, lease) // best effort: it holds nothing and expires anyway
		return store.NoLease, err
	}
	return lease, nil
}

// applyPlacer records that the registration of affinity a appeared or
// went. c.mu is held.
func (c *candCache) applyPlacer(a string, present bool) {
	if present == c.placers[a] {
		return
	}
	if present {
		c.placers[a] = true
	} else {
		delete(c.placers, a)
	}
	c.shareStale = true
}

// share marks the DNs and CNs of the other placers' shares avoided (see
// the top of this file), if the placers, DNs or CNs changed since it last
// did.
// c.mu is held.
func (c *candCache) share() {
	if !c.shareStale {
		return
	}
	c.shareStale = false
	var placers []string
	if c.affinity != "" {
		placers = append(placers, c.affinity)
		for a := range c.placers {
			if a != c.affinity {
				placers = append(placers, a)
			}
		}
		slices.Sort(placers)
	}
	self := slices.Index(placers, c.affinity)
	theirs := func(j int) bool { return len(placers) > 1 && j%len(placers) != self }
	var dns, cns []dealt
	for _, d := range c.dns {
		if d.present {
			dns = append(dns, dealt{loc: d.spec.Location, name: d.name, avoid: &d.avoid, reindex: func() { c.reindexDN(d) }})
		}
	}
	for _, n := range c.cns {
		if n.present {
			cns = append(cns, dealt{loc: n.spec.Location, name: n.name, avoid: &n.avoid, reindex: func() { c.reindexCN(n) }})
		}
	}
	deal(dns, theirs)
	deal(cns, theirs)
}

// dealt is a node dealt out to the placers: where it sorts, and its
// avoided mark and how to reindex it when that changes.
type dealt struct {
	loc, name string
	avoid     *bool
	reindex   func()
}

// deal sorts nodes by location, then name, and marks avoided those whose
// turn j is theirs (another placer's), reindexing the ones that changed.
func deal(nodes []dealt, theirs func(j int) bool) {
	slices.SortFunc(nodes, func(a, b dealt) int { return cmpStrings(a.loc, b.loc, a.name, b.name) })
	for j, n := range nodes {
		if avoid := theirs(j); avoid != *n.avoid {
			*n.avoid = avoid
			n.reindex()
		}
	}
}

// shareLoc is where disk nodes and CNs are indexed: by location, and
// apart whether they are avoided (another placer's share), so the sample
// takes the best of both.
type shareLoc struct {
	loc   string
	avoid bool
}

// avoidDN and avoidCN add d to cands.AvoidDNs and n to cands.AvoidCNs if
// they are avoided.
func (cands *Candidates) avoidDN(d *dnEnt) {
	if d.avoid {
		cands.AvoidDNs = addAvoided(cands.AvoidDNs, d.name)
	}
}

func (cands *Candidates) avoidCN(n *cnEnt) {
	if n.avoid {
		cands.AvoidCNs = addAvoided(cands.AvoidCNs, n.name)
	}
}

func addAvoided(m map[string]bool, name string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[name] = true
	return m
}
