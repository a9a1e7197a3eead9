package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vda-io/vda/alloc"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// CreateDiskArray places and creates a DA in one store transaction.
//
// It places the DA on the Cluster's candidate cache (every DN, PD and CN
// with its status, kept current by a store watch; see Config.Placer for
// what a Placer is shown), after waiting until the cache has seen every
// change committed before the call (concurrent creates share one read of
// the store's revision that started after all of them). It then commits
// the DA together with the capacity it reserves (PD bytes and VD counts,
// CN controller counts) in one transaction conditioned on the revisions
// of every PD, DN and CN it chose, as the cache had them, and on the DA's
// name being free. If one of them changed, it waits until the cache has
// seen the revision the transaction failed at and places again (with the
// next PlacementRequest.Attempt); if the name was taken meanwhile, the
// create is idempotent as always. No lock is taken, and a stale cache can
// cost a retry but never an over-allocation.
//
// Creates of one Cluster that run at the same time see each other's
// placements before they commit, so they do not choose the same disks
// and nodes beyond what fits; they share store transactions (group
// commit: the creates that are ready while one transaction is in flight
// go together in the next one, all or none, see commit.go), and a create
// that finds no room while others of this Cluster are committing waits
// for them before it reports ErrResourceExhausted.
func (c *Cluster) CreateDiskArray(ctx context.Context, spec DiskArraySpec) (DiskArray, error) {
	layout, err := spec.validate()
	if err != nil {
		return DiskArray{}, err
	}
	cc, err := c.candidateCache(ctx)
	if err != nil {
		return DiskArray{}, err
	}
	// Statuses (capacity, health) are not guarded by the transaction, so
	// see every one written before this call.
	rev, err := cc.rg.revision(ctx, c.s)
	if err != nil {
		return DiskArray{}, err
	}
	if err := cc.waitRev(ctx, rev); err != nil {
		return DiskArray{}, err
	}
	req := PlacementRequest{Name: spec.Name, StripeCount: spec.Conf.StripeCount, CntlrCount: spec.CntlrCount, VDSizeBytes: layout.VDSizeBytes,
		CNLocations: spec.CNLocations, DNLocations: spec.DNLocations}
	for attempt := 0; attempt < c.attempts; attempt++ {
		req.Attempt = attempt
		var da DiskArray
		r, err := cc.place(ctx, c.placer, c.boundedPlacer(), req, func(pl *plan) (store.Txn, error) {
			var t store.Txn
			var err error
			da, t, err = pl.txn(spec, layout)
			return t, err
		})
		if err != nil {
			// A DA of this name that exists says more than a full cluster.
			if old, found, gerr := c.existingDA(ctx, spec); found || gerr != nil {
				return old, cmpErr(gerr)
			}
			return DiskArray{}, req.explain(err)
		}
		res := cc.commit(ctx, r)
		if res.err != nil {
			return DiskArray{}, fmt.Errorf("vda: create %s: %w", daWhat(spec.Name), res.err)
		}
		if res.ok {
			return da, nil
		}
		if !res.stale {
			if old, found, err := c.existingDA(ctx, spec); found || err != nil {
				return old, err // created meanwhile (by a retry of this request?)
			}
		}
		c.log.Debug("placement candidates changed, placing again", "da", spec.Name, "attempt", attempt)
		// The failed transaction's revision is one at which a guard did
		// not hold: once the cache has seen it, it has what beat this one.
		if res.rev > 0 {
			err = cc.waitRev(ctx, res.rev)
		} else {
			err = cc.refresh(ctx, r.pl.guarded())
		}
		if err != nil {
			return DiskArray{}, err
		}
	}
	return DiskArray{}, fmt.Errorf("%w: placement of %s kept conflicting", store.ErrConflict, daWhat(spec.Name))
}

// existingDA reads the DA spec names: if it exists, the create succeeds
// with it if it is what spec asks for (idempotent creates) and fails with
// ErrAlreadyExists otherwise.
func (c *Cluster) existingDA(ctx context.Context, spec DiskArraySpec) (DiskArray, bool, error) {
	old, err := getJSON(ctx, c, KeyDA(spec.Name), daWhat(spec.Name), daStatus)
	switch {
	case errors.Is(err, ErrNotFound):
		return DiskArray{}, false, nil
	case err != nil:
		return DiskArray{}, false, err
	}
	if err := spec.same(old); err != nil {
		return DiskArray{}, true, err
	}
	return old, true, nil
}

// boundedPlacer reports whether the Placer is alloc.Default's, which is
// shown a bounded sample of the candidates (its choice among them is the
// one it would make among all, but for ties and for disk nodes beyond the
// sample; see boundedCandidates).
func (c *Cluster) boundedPlacer() bool {
	switch p := c.placer.(type) {
	case DefaultPlacer:
		return true
	case PolicyPlacer:
		_, ok := p.Policy.(alloc.Default)
		return ok
	}
	return false
}

// candidateCache returns the Cluster's candidate cache, loading it on
// first use (and again after its watch stopped, e.g. the store closed).
func (c *Cluster) candidateCache(ctx context.Context) (*candCache, error) {
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	if c.cache != nil {
		if c.cache.stopped() == nil {
			return c.cache, nil
		}
		c.cache = nil
	}
	cc, err := newCandCache(ctx, c.s, c.log, c.affinity)
	if err != nil {
		return nil, err
	}
	c.cache = cc
	return cc, nil
}

// Close stops what the Cluster runs in the background: the store watch
// that keeps its placement candidates current (started by the first
// CreateDiskArray). It does not close the store, and the watch also ends
// when the store closes. A Cluster used after Close starts it again.
func (c *Cluster) Close() error {
	c.cacheMu.Lock()
	cc := c.cache
	c.cache = nil
	c.cacheMu.Unlock()
	if cc != nil {
		cc.stop()
	}
	return nil
}

// plan is a placement with what the cache knew of its PDs, DNs and CNs.
type plan struct {
	res    reservation
	pds    []PhysicalDisk // as stored, with the status placement saw
	pdRevs []int64
	dns    []DiskNode // of pds[i]
	dnRevs []int64
	cns    []ControllerNode // as stored
	cnRevs []int64
}

// guarded lists the keys the plan's transaction is conditioned on, but
// the DA's.
func (pl *plan) guarded() []string {
	var keys []string
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for i, pd := range pl.pds {
		add(KeyPD(pd.DNName, pd.Name))
		add(KeyDN(pl.dns[i].Name))
	}
	for _, cn := range pl.cns {
		add(KeyCN(cn.Name))
	}
	return keys
}

// awaitAdvance waits, with c.mu held on entry and released, until a
// pending create of this Cluster commits or fails (then the caller places
// again), or ctx ends.
func (c *candCache) awaitAdvance(ctx context.Context, name string) error {
	ch := c.advanced
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vda: placing %s: %w", daWhat(name), ctx.Err())
	}
}

// place asks the Placer, reserves its answer in the cache and queues
// the transaction build makes of it (under the cache's lock, so the
// committer sees the reservation and its transaction together, and a
// commit that settles after it rebases it); commit sends it. bounded: the Placer is alloc.Default's and is shown a sample
// first.
func (c *candCache) place(ctx context.Context, placer Placer, bounded bool, req PlacementRequest,
	build func(*plan) (store.Txn, error)) (*commitReq, error) {
	for {
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return nil, c.err
		}
		c.share()
		var p Placement
		err := ErrResourceExhausted
		if bounded {
			p, err = c.boundedPlace(req)
		}
		// A sample too small for the request (or a Placer that wants
		// everything): show every candidate.
		if errors.Is(err, ErrResourceExhausted) {
			p, err = placer.Place(req, req.restrict(c.allCandidates()))
		}
		if errors.Is(err, ErrResourceExhausted) && c.pending > 0 {
			// Pending creates of this Cluster may fail and free room.
			if err := c.awaitAdvance(ctx, req.Name); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		// A PD or CN that a create of this Cluster in flight writes may be
		// chosen: once that create commits, this one is rebased onto its
		// write (see rebase), so neither waits for the other.
		pl, err := c.plan(req, p)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		t, err := build(pl)
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.reserve(&pl.res)
		r := c.enqueue(ctx, pl, build, t)
		c.mu.Unlock()
		return r, nil
	}
}

// plan checks a Placer's answer against the cache and snapshots what the
// transaction needs. c.mu is held.
func (c *candCache) plan(req PlacementRequest, p Placement) (*plan, error) {
	if len(p.PDs) != req.StripeCount || len(p.CNs) != req.CntlrCount {
		return nil, fmt.Errorf("vda: placer returned %d PDs and %d CNs", len(p.PDs), len(p.CNs))
	}
	pl := &plan{res: reservation{bytes: req.VDSizeBytes}}
	seen := map[string]bool{}
	for _, cand := range p.PDs {
		key := KeyPD(cand.DNName, cand.Name)
		d := c.dns[cand.DNName]
		var e *pdEnt
		if d != nil {
			e = d.pds[cand.Name]
		}
		if e == nil || !e.present || !d.present || seen[key] {
			return nil, fmt.Errorf("vda: placer chose an unusable %s", pdWhat(cand.DNName, cand.Name))
		}
		seen[key] = true
		pd := e.spec
		pd.Status = e.status
		if d.spec.Offline || pd.Offline || pd.FreeBytes() < req.VDSizeBytes {
			return nil, fmt.Errorf("vda: placer chose an unusable %s", pdWhat(cand.DNName, cand.Name))
		}
		pl.res.pds = append(pl.res.pds, e)
		pl.pds, pl.pdRevs = append(pl.pds, pd), append(pl.pdRevs, c.revs[key])
		pl.dns, pl.dnRevs = append(pl.dns, d.spec), append(pl.dnRevs, c.revs[KeyDN(d.name)])
	}
	for _, cand := range p.CNs {
		key := KeyCN(cand.Name)
		n := c.cns[cand.Name]
		if n == nil || !n.present || seen[key] || n.spec.Offline {
			return nil, fmt.Errorf("vda: placer chose an unusable controller node %q", cand.Name)
		}
		seen[key] = true
		pl.res.cns = append(pl.res.cns, n)
		pl.cns, pl.cnRevs = append(pl.cns, n.spec), append(pl.cnRevs, c.revs[key])
	}
	return pl, nil
}

// txn is the plan's transaction: the DA and the capacity it reserves,
// conditioned on the name being free and on every chosen PD, DN and CN
// being as the plan saw it.
func (pl *plan) txn(spec DiskArraySpec, l DALayout) (DiskArray, store.Txn, error) {
	da := DiskArray{ID: nvmeof.NewID(), Name: spec.Name, Description: spec.Description,
		SizeBytes: spec.SizeBytes, PhysicalSizeBytes: spec.PhysicalSizeBytes,
		StripeCount: spec.Conf.StripeCount, StripeSizeKB: spec.Conf.StripeSizeKB, CntlrCount: spec.CntlrCount,
		ClusterBytes: l.ClusterBytes, VDSizeBytes: l.VDSizeBytes, Epoch: 1,
		CNLocations: spec.CNLocations, DNLocations: spec.DNLocations}
	t := store.Txn{Conds: []store.Cond{{Key: KeyDA(spec.Name)}}}
	guarded := map[string]bool{}
	guard := func(key string, rev int64) {
		if !guarded[key] {
			guarded[key] = true
			t.Conds = append(t.Conds, store.Cond{Key: key, ModRevision: rev})
		}
	}
	put := func(key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("vda: encode %s: %w", key, err)
		}
		t.Ops = append(t.Ops, store.Op{Key: key, Value: b})
		return nil
	}
	for i, pd := range pl.pds {
		dn := pl.dns[i]
		key := KeyPD(pd.DNName, pd.Name)
		guard(key, pl.pdRevs[i])
		guard(KeyDN(dn.Name), pl.dnRevs[i])
		pd.AllocatedBytes += l.VDSizeBytes
		pd.VDCount++
		pd.Status = Status{}
		if err := put(key, pd); err != nil {
			return da, t, err
		}
		da.VDs = append(da.VDs, VD{ID: nvmeof.NewID(), Idx: i, DNID: dn.ID, DNName: dn.Name,
			PDID: pd.ID, PDName: pd.Name, SizeBytes: l.VDSizeBytes})
	}
	for i, cn := range pl.cns {
		guard(KeyCN(cn.Name), pl.cnRevs[i])
		cn.CntlrCount++
		cn.Status = Status{}
		if err := put(KeyCN(cn.Name), cn); err != nil {
			return da, t, err
		}
		da.Cntlrs = append(da.Cntlrs, Cntlr{ID: nvmeof.NewID(), Idx: i, CNID: cn.ID, CNName: cn.Name, Primary: i == 0})
	}
	da.PrimaryCntlrID = da.Cntlrs[0].ID
	return da, t, put(KeyDA(da.Name), da)
}
