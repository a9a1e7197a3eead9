package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/alloc"
	"github.com/vda-io/vda/store"
)

// The candidate cache: what CreateDiskArray places DAs on, kept in memory
// so that a create neither lists nor decodes the cluster.
//
// It holds every DN, PD and CN with its status, loaded once from the store
// and kept current by one watch over the whole store (so its revision
// follows the store's: waitRev can tell when it has seen everything
// committed before a given revision). A failed watch (compaction, a broken
// connection) is followed by a reload, which lists everything again and
// applies it the same way as the events. Every key remembers the revision
// it was last changed at (also once deleted), and a change at or below it
// is ignored, so replays after a reload and the create's own writes
// (applied as soon as they commit) are harmless in any order.
//
// The cache is an optimisation, never the authority: a create conditions
// its transaction on the revisions of every DN, PD and CN it chose, as the
// cache had them, so a stale cache costs a retry, never an over-allocation.
// Each Cluster has its own cache; several Clusters on one store stay
// correct because the store's transaction decides.
//
// Index: the PDs that may take a VD (online, on a known disk node, with
// known capacity and free space) are kept per disk node in buckets of
// alloc.FreeBucket (the rank alloc.Default gives them); disk nodes that
// are online and hold such a PD, per location, in the bucket of their
// emptiest PD; online CNs per location by controller count. A placement
// request takes a bounded sample of this (boundedCandidates) instead of
// every disk: its cost depends on the number of locations and on the
// request, not on the number of PDs or nodes.
//
// Creates of one Cluster that run at the same time see each other's
// placements before they commit (pending reservations, counted in the
// index), so they do not race for the same disks and nodes.

const nBuckets = alloc.FreeBuckets

// iset is a set with O(1) add, remove and indexed access (its order is
// that of its history).
type iset[T comparable] struct {
	items []T
	pos   map[T]int
}

func (s *iset[T]) add(v T) {
	if s.pos == nil {
		s.pos = map[T]int{}
	}
	if _, ok := s.pos[v]; ok {
		return
	}
	s.pos[v] = len(s.items)
	s.items = append(s.items, v)
}

func (s *iset[T]) remove(v T) {
	i, ok := s.pos[v]
	if !ok {
		return
	}
	last := len(s.items) - 1
	s.items[i] = s.items[last]
	s.pos[s.items[i]] = i
	var zero T
	s.items[last] = zero
	s.items = s.items[:last]
	delete(s.pos, v)
}

// window calls fn on the items from position start (modulo the length)
// on, wrapping around, until fn returns false or every item was seen.
func (s *iset[T]) window(start uint64, fn func(T) bool) bool {
	n := uint64(len(s.items))
	for k := range n {
		if !fn(s.items[(start+k)%n]) {
			return false
		}
	}
	return true
}

// stored is an object of the cache as the store has it: its spec and its
// status, each with whether its key exists.
type stored[T any] struct {
	spec      T
	present   bool // the spec key exists
	status    Status
	hasStatus bool
}

// set records the spec or (status) the status that decode reads; decode
// fails for a deleted or undecodable key.
func (e *stored[T]) set(status bool, decode func(any) bool) {
	if status {
		var st Status
		e.hasStatus = decode(&st)
		e.status = st
		return
	}
	var v T
	e.present = decode(&v)
	e.spec = v
}

type dnEnt struct {
	name string
	stored[DiskNode]
	pds   map[string]*pdEnt
	disks [nBuckets]iset[*pdEnt] // PDs that may take a VD, by bucket
	// avoid: in another placer's share (placers.go).
	avoid bool
	// Where the node is indexed in the cache's locations (idxBucket -1:
	// nowhere).
	idxLoc    shareLoc
	idxBucket int
}

func (d *dnEnt) available() bool {
	return d.present && !d.spec.Offline && d.status.Health != HealthFailed
}

func (d *dnEnt) withStatus() DiskNode {
	dn := d.spec
	dn.Status = d.status
	return dn
}

type pdEnt struct {
	dn   *dnEnt
	name string
	stored[PhysicalDisk]
	// Reserved by creates of this Cluster that have not committed.
	pendBytes uint64
	pendVDs   int
	bucket    int    // in dn.disks, -1 if not there
	id        string // the alloc.Disk ID PolicyPlacer gives it: spec.DNName + "/" + spec.Name
	capacity  uint64 // CapacityBytes with the status
}

// capFree is CapacityBytes and FreeBytes of effective(), without copying
// the PD.
func (p *pdEnt) capFree() (capacity, free uint64) {
	used := p.spec.AllocatedBytes + p.pendBytes
	if p.capacity < used {
		return p.capacity, 0
	}
	return p.capacity, p.capacity - used
}

// effective is the PD as placement sees it: with its status and this
// Cluster's pending reservations.
func (p *pdEnt) effective() PhysicalDisk {
	pd := p.spec
	pd.Status = p.status
	pd.AllocatedBytes += p.pendBytes
	pd.VDCount += p.pendVDs
	return pd
}

type cnEnt struct {
	name string
	stored[ControllerNode]
	pend int // controllers reserved by pending creates
	// avoid: in another placer's share (placers.go).
	avoid   bool
	idxLoc  shareLoc
	idxLoad int
	indexed bool
}

func (n *cnEnt) effective() ControllerNode {
	cn := n.spec
	cn.Status = n.status
	cn.CntlrCount += n.pend
	return cn
}

type locPDs struct {
	nodes [nBuckets]iset[*dnEnt] // by the bucket of their emptiest PD
}

type locCNs struct {
	byLoad map[int]*iset[*cnEnt]
	loads  []int // the keys of byLoad, ascending
}

// errCacheStopped: the cache's watch ended for good (the store closed).
var errCacheStopped = errors.New("vda: candidate cache stopped")

type candCache struct {
	s   store.Store
	log hclog.Logger

	mu sync.Mutex
	// rev: every change up to rev is applied. advanced is closed (and
	// replaced) whenever rev grows, the pending reservations shrink, or
	// the cache stops (err is set then).
	rev      int64
	advanced chan struct{}
	err      error
	revs     map[string]int64 // last revision of each key (also deleted ones)
	dns      map[string]*dnEnt
	cns      map[string]*cnEnt
	pdLocs   map[shareLoc]*locPDs
	cnLocs   map[shareLoc]*locCNs
	pending  int // reservations not yet released

	// Placers (placers.go): this Cluster's affinity, the registered ones,
	// and whether the CNs' shares need computing again.
	affinity   string
	placers    map[string]bool
	shareStale bool

	// Group commit (commit.go): creates waiting for their transaction,
	// whether the committer runs, and counts for tests.
	queue      []*commitReq
	committing bool
	batches    atomic.Int64 // transactions of more than one create
	fallbacks  atomic.Int64 // of those, failed ones committed one by one
	rg         revGate      // coalesced store revision reads

	// boundedPlace's buffers.
	scratch struct {
		disks []alloc.Disk
		pds   []*pdEnt
		nodes []alloc.Node
		cns   []*cnEnt
	}

	cancel context.CancelFunc
	exited chan struct{}
}

// newCandCache loads the cache (with ctx) and starts its watch, which runs
// until stop or until the store closes.
// With an affinity (Config.PlacementAffinity) it also keeps it registered
// as a placer for as long.
func newCandCache(ctx context.Context, s store.Store, log hclog.Logger, affinity string) (*candCache, error) {
	c := &candCache{s: s, log: log, advanced: make(chan struct{}), revs: map[string]int64{},
		dns: map[string]*dnEnt{}, cns: map[string]*cnEnt{}, pdLocs: map[shareLoc]*locPDs{}, cnLocs: map[shareLoc]*locCNs{},
		affinity: affinity, placers: map[string]bool{}, shareStale: true, exited: make(chan struct{})}
	from, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	registered := make(chan struct{})
	if affinity != "" {
		go func() {
			defer close(registered)
			c.register(wctx)
		}()
	} else {
		close(registered)
	}
	go func() {
		c.run(wctx, from)
		cancel() // the watch ended for good (stop, or the store closed): so does the registration
		<-registered
		close(c.exited)
	}()
	return c, nil
}

// stop ends the watch and waits for it.
func (c *candCache) stop() {
	c.cancel()
	<-c.exited
}

// stopped reports why the cache stopped (nil while it runs).
func (c *candCache) stopped() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// candidatePrefixes are the keys the cache holds.
var candidatePrefixes = []string{PrefixDN, PrefixPD, PrefixCN, KeyStatus(PrefixDN), KeyStatus(PrefixPD), KeyStatus(PrefixCN), PrefixPlacer}

// loadPage bounds one List of the (re)load, so no single reply holds the
// whole cluster.
const loadPage = 5000

// load lists every key the cache holds and applies it; keys the cache has
// that the lists did not return are deleted. It returns the revision to
// watch from.
func (c *candCache) load(ctx context.Context) (int64, error) {
	minRev := int64(math.MaxInt64)
	seen := map[string]bool{}
	for _, prefix := range candidatePrefixes {
		opt := store.ListOptions{Limit: loadPage}
		for {
			res, err := c.s.List(ctx, prefix, opt)
			if err != nil {
				return 0, err
			}
			minRev = min(minRev, res.Revision)
			c.mu.Lock()
			for _, kv := range res.KVs {
				seen[kv.Key] = true
				c.apply(kv.Key, kv.Value, false, kv.ModRevision)
			}
			c.mu.Unlock()
			if !res.More || len(res.KVs) == 0 {
				break
			}
			opt.StartAfter = res.KVs[len(res.KVs)-1].Key
		}
	}
	// A key absent from its page was deleted by the page's revision, so
	// by minRev at the latest unless it changed after minRev (then the
	// watch, which starts after minRev, replays that change).
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, rev := range c.revs {
		if !seen[key] && rev < minRev {
			c.apply(key, nil, true, minRev)
		}
	}
	c.advance(minRev)
	return minRev + 1, nil
}

// run applies the watch's events; after a failure it reloads and watches
// again, until ctx ends or the store closes.
func (c *candCache) run(ctx context.Context, from int64) {
	var pause time.Duration
	for {
		err := c.watch(ctx, from)
		if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			c.mu.Lock()
			c.err = fmt.Errorf("%w: %w", errCacheStopped, cmpErr(ctx.Err(), err))
			c.notify()
			c.mu.Unlock()
			return
		}
		c.log.Debug("candidate cache: watch failed, reloading", "err", err)
		for {
			if from, err = c.load(ctx); err == nil {
				pause = 0
				break
			}
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				break // the watch fails at once and ends the loop
			}
			pause = min(max(2*pause, 10*time.Millisecond), time.Second)
			c.log.Debug("candidate cache: reload failed", "err", err, "retry_in", pause)
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// watch applies the changes from revision from on, until the watch fails.
func (c *candCache) watch(ctx context.Context, from int64) error {
	w, err := c.s.Watch(ctx, "", from)
	if err != nil {
		return err
	}
	defer func() { _ = w.Close() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-w.Events():
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("vda: candidate cache: watch ended")
			}
			if resp.Err != nil {
				return resp.Err
			}
			c.mu.Lock()
			for _, ev := range resp.Events {
				c.apply(ev.KV.Key, ev.KV.Value, ev.Type == store.EventDelete, ev.KV.ModRevision)
			}
			c.advance(resp.Revision)
			c.mu.Unlock()
		}
	}
}

// advance records that every change up to rev is applied. c.mu is held.
func (c *candCache) advance(rev int64) {
	if rev > c.rev {
		c.rev = rev
		c.notify()
	}
}

// notify wakes the waiters of advanced. c.mu is held.
func (c *candCache) notify() {
	close(c.advanced)
	c.advanced = make(chan struct{})
}

// waitRev waits until the cache has applied every change up to rev.
func (c *candCache) waitRev(ctx context.Context, rev int64) error {
	for {
		c.mu.Lock()
		cur, ch, err := c.rev, c.advanced, c.err
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if cur >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("vda: waiting for the candidate cache: %w", ctx.Err())
		}
	}
}

// refresh reads keys from the store (each with the revision it was read
// at, so a deleted one is known as such) and applies them: after a
// conflict, the next placement sees what beat this one.
func (c *candCache) refresh(ctx context.Context, keys []string) error {
	for _, key := range keys {
		res, err := c.s.List(ctx, key, store.ListOptions{Limit: 1})
		if err != nil {
			return err
		}
		c.mu.Lock()
		if len(res.KVs) == 1 && res.KVs[0].Key == key {
			c.apply(key, res.KVs[0].Value, false, res.KVs[0].ModRevision)
		} else {
			c.apply(key, nil, true, res.Revision)
		}
		c.mu.Unlock()
	}
	return nil
}

type keyKind int

const (
	kindNone keyKind = iota
	kindDN
	kindPD
	kindCN
	kindPlacer // a placer's registration (placers.go)
)

// parseCandKey says which object a key is the spec or status of.
func parseCandKey(key string) (kind keyKind, dn, name string, status bool) {
	if !strings.HasPrefix(key, Prefix) {
		return kindNone, "", "", false
	}
	if a, ok := strings.CutPrefix(key, PrefixPlacer); ok {
		if a == "" || strings.Contains(a, "/") {
			return kindNone, "", "", false
		}
		return kindPlacer, "", a, false
	}
	rest := key[len(Prefix):]
	if r, ok := strings.CutPrefix(rest, "status/"); ok {
		rest, status = r, true
	}
	switch {
	case strings.HasPrefix(rest, "dn/"):
		name = rest[len("dn/"):]
		if name == "" || strings.Contains(name, "/") {
			return kindNone, "", "", false
		}
		return kindDN, name, name, status
	case strings.HasPrefix(rest, "cn/"):
		name = rest[len("cn/"):]
		if name == "" || strings.Contains(name, "/") {
			return kindNone, "", "", false
		}
		return kindCN, "", name, status
	case strings.HasPrefix(rest, "pd/"):
		dn, name, ok := strings.Cut(rest[len("pd/"):], "/")
		if !ok || dn == "" || name == "" || strings.Contains(name, "/") {
			return kindNone, "", "", false
		}
		return kindPD, dn, name, status
	}
	return kindNone, "", "", false
}

// apply records a put (value) or delete of key at rev, unless the cache
// knows a later change of it. c.mu is held.
func (c *candCache) apply(key string, value []byte, deleted bool, rev int64) {
	kind, dnName, name, status := parseCandKey(key)
	if kind == kindNone || rev <= c.revs[key] {
		return
	}
	c.revs[key] = rev
	decode := func(v any) bool {
		if deleted {
			return false
		}
		if err := json.Unmarshal(value, v); err != nil {
			// Placement skips what it cannot read; the store's own
			// readers report the damage.
			c.log.Warn("candidate cache: cannot decode, ignoring the object", "key", key, "err", err)
			return false
		}
		return true
	}
	switch kind {
	case kindDN:
		d := c.dn(dnName)
		present, loc := d.present, d.spec.Location
		d.set(status, decode)
		if d.present != present || d.spec.Location != loc {
			c.shareStale = true // the shares deal out the present DNs by location
		}
		c.reindexDN(d)
		c.gcDN(d)
	case kindPD:
		d := c.dn(dnName)
		p := d.pds[name]
		if p == nil {
			p = &pdEnt{dn: d, name: name, bucket: -1}
			d.pds[name] = p
		}
		p.set(status, decode)
		if !status {
			p.id = p.spec.DNName + "/" + p.spec.Name
		}
		withStatus := p.spec
		withStatus.Status = p.status
		p.capacity = withStatus.CapacityBytes()
		c.reindexPD(p)
		if !p.present && !p.hasStatus && p.pendVDs == 0 {
			delete(d.pds, name)
		}
		c.gcDN(d)
	case kindPlacer:
		c.applyPlacer(name, !deleted)
	case kindCN:
		n := c.cns[name]
		if n == nil {
			n = &cnEnt{name: name}
			c.cns[name] = n
		}
		present, loc := n.present, n.spec.Location
		n.set(status, decode)
		if n.present != present || n.spec.Location != loc {
			c.shareStale = true // the shares deal out the present CNs by location
		}
		c.reindexCN(n)
		if !n.present && !n.hasStatus && n.pend == 0 {
			delete(c.cns, name)
		}
	}
}

func (c *candCache) dn(name string) *dnEnt {
	d := c.dns[name]
	if d == nil {
		d = &dnEnt{name: name, pds: map[string]*pdEnt{}, idxBucket: -1}
		c.dns[name] = d
	}
	return d
}

// gcDN forgets a DN with nothing left to know of.
func (c *candCache) gcDN(d *dnEnt) {
	if !d.present && !d.hasStatus && len(d.pds) == 0 {
		delete(c.dns, d.name)
	}
}

// pdBucket is where p belongs in its DN's index (-1: it cannot take a VD).
func pdBucket(p *pdEnt) int {
	if !p.present || p.spec.Offline || p.status.Health == HealthFailed {
		return -1
	}
	capacity, free := p.capFree()
	if capacity == 0 || free == 0 {
		return -1
	}
	return alloc.FreeBucket(free, capacity)
}

func (c *candCache) reindexPD(p *pdEnt) {
	b := pdBucket(p)
	if b == p.bucket {
		return
	}
	if p.bucket >= 0 {
		p.dn.disks[p.bucket].remove(p)
	}
	if b >= 0 {
		p.dn.disks[b].add(p)
	}
	p.bucket = b
	c.reindexDN(p.dn)
}

func (c *candCache) reindexDN(d *dnEnt) {
	b := -1
	if d.available() {
		for k := nBuckets - 1; k >= 0; k-- {
			if len(d.disks[k].items) > 0 {
				b = k
				break
			}
		}
	}
	loc := shareLoc{loc: d.spec.Location, avoid: d.avoid}
	if b == d.idxBucket && loc == d.idxLoc {
		return
	}
	if d.idxBucket >= 0 {
		c.pdLocs[d.idxLoc].nodes[d.idxBucket].remove(d)
	}
	if b >= 0 {
		lp := c.pdLocs[loc]
		if lp == nil {
			lp = &locPDs{}
			c.pdLocs[loc] = lp
		}
		lp.nodes[b].add(d)
	}
	d.idxLoc, d.idxBucket = loc, b
}

func (c *candCache) reindexCN(n *cnEnt) {
	on := n.present && !n.spec.Offline && n.status.Health != HealthFailed
	load, loc := max(n.spec.CntlrCount+n.pend, 0), shareLoc{loc: n.spec.Location, avoid: n.avoid}
	if on == n.indexed && load == n.idxLoad && loc == n.idxLoc {
		return
	}
	if n.indexed {
		lc := c.cnLocs[n.idxLoc]
		set := lc.byLoad[n.idxLoad]
		set.remove(n)
		if len(set.items) == 0 {
			delete(lc.byLoad, n.idxLoad)
			if i, ok := slices.BinarySearch(lc.loads, n.idxLoad); ok {
				lc.loads = slices.Delete(lc.loads, i, i+1)
			}
		}
	}
	if on {
		lc := c.cnLocs[loc]
		if lc == nil {
			lc = &locCNs{byLoad: map[int]*iset[*cnEnt]{}}
			c.cnLocs[loc] = lc
		}
		set := lc.byLoad[load]
		if set == nil {
			set = &iset[*cnEnt]{}
			lc.byLoad[load] = set
			i, _ := slices.BinarySearch(lc.loads, load)
			lc.loads = slices.Insert(lc.loads, i, load)
		}
		set.add(n)
	}
	n.indexed, n.idxLoad, n.idxLoc = on, load, loc
}

// reservation is what a create placed and has not committed yet.
type reservation struct {
	pds   []*pdEnt
	cns   []*cnEnt
	bytes uint64
}

// reserve counts a placement in the index until release. c.mu is held.
func (c *candCache) reserve(r *reservation) {
	for _, p := range r.pds {
		p.pendBytes += r.bytes
		p.pendVDs++
		c.reindexPD(p)
	}
	for _, n := range r.cns {
		n.pend++
		c.reindexCN(n)
	}
	c.pending++
}

// release undoes reserve (after the create committed and its writes were
// applied, or failed). c.mu is held.
func (c *candCache) release(r *reservation) {
	for _, p := range r.pds {
		p.pendBytes -= r.bytes
		p.pendVDs--
		c.reindexPD(p)
	}
	for _, n := range r.cns {
		n.pend--
		c.reindexCN(n)
	}
	c.pending--
	c.notify()
}
