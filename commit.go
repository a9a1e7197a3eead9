package vda

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vda-io/vda/store"
)

// Group commit: the creates of one Cluster that are ready to commit at the
// same time share one store transaction.
//
// A create whose placement is reserved in the candidate cache queues its
// commit; one committer per cache sends the queue as one transaction
// whenever none of its own is in flight, so the store sees one write (one
// raft entry, one fsync, one watch event batch) for all the creates that
// queued during the previous one. The batch's guards are the union of its
// members' guards (every PD, DN and CN each chose at the revision the
// cache had, every DA name free), and a PD or CN that several members
// chose is written once with all their reservations added to it. A batch
// therefore commits exactly what its members would have committed one
// after the other, or nothing: if a guard fails, each member is committed
// on its own transaction in turn (so one create that lost a race, or whose
// name is taken, does not fail the others), and the store decides each.
//
// Members are chosen so the union is consistent: a member that guards a
// key at another revision than the batch, or whose DA name is already in
// it, or that would take the transaction past the store's limits, waits
// for the next batch. A create may choose a PD or CN that a queued create
// chose (they share the next batch) or that a create in flight writes:
// when that one commits, the queued creates that guard the key at the
// revision it replaced are rebased onto its write (rebase). So concurrent
// creates of one Cluster choose the least-loaded PDs and CNs, counting
// each other's reservations, without waiting for each other.

// commitReq is one create waiting for its transaction.
type commitReq struct {
	ctx   context.Context
	pl    *plan
	build func(*plan) (store.Txn, error) // makes txn of pl
	txn   store.Txn                      // the create's own transaction
	bytes int                            // of txn's keys and values, as store.ValidateTxn counts them
	done  chan commitRes
}

// commitRes is the outcome of a commitReq: committed at rev, lost (a guard
// failed at rev; the reservation is released; stale: the cache, at rev,
// shows a PD, DN or CN guard that did not hold, so the DA name was not
// what failed), or failed with err (the transaction may or may not have
// been applied, as store.Store says).
type commitRes struct {
	ok    bool
	stale bool
	rev   int64
	err   error
}

func txnBytes(t store.Txn) int {
	n := 0
	for _, c := range t.Conds {
		n += len(c.Key)
	}
	for _, op := range t.Ops {
		n += len(op.Key) + len(op.Value)
	}
	return n
}

// enqueue queues pl's transaction t. c.mu is held.
func (c *candCache) enqueue(ctx context.Context, pl *plan, build func(*plan) (store.Txn, error), t store.Txn) *commitReq {
	r := &commitReq{ctx: ctx, pl: pl, build: build, txn: t, bytes: txnBytes(t), done: make(chan commitRes, 1)}
	c.queue = append(c.queue, r)
	return r
}

// commit waits for the outcome of r's transaction, alone or in a batch
// with the concurrent creates of this cache. r's reservation is released
// when it returns; on success the commit's writes are in the cache first.
// If no committer runs, the caller commits (the queue as it is) itself,
// then leaves what queued meanwhile to a committer goroutine. If ctx ends
// while r is still queued, r leaves the queue.
func (c *candCache) commit(ctx context.Context, r *commitReq) commitRes {
	c.mu.Lock()
	lead := !c.committing
	c.committing = true
	c.mu.Unlock()
	if lead {
		c.commitLoop(r)
	}
	select {
	case res := <-r.done:
		return res
	case <-ctx.Done():
	}
	c.mu.Lock()
	if i := slices.Index(c.queue, r); i >= 0 {
		c.queue = slices.Delete(c.queue, i, i+1)
		c.release(&r.pl.res)
		c.mu.Unlock()
		return commitRes{err: fmt.Errorf("vda: commit: %w", ctx.Err())}
	}
	c.mu.Unlock()
	// In flight: its outcome decides.
	return <-r.done
}

// commitLoop sends the queue, one batch at a time, until it is empty or
// (own not nil) own has its outcome; then a goroutine takes over.
func (c *candCache) commitLoop(own *commitReq) {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.committing = false
			c.mu.Unlock()
			return
		}
		if own != nil && len(own.done) > 0 {
			c.mu.Unlock()
			go c.commitLoop(nil)
			return
		}
		b := c.takeBatch()
		c.mu.Unlock()
		c.commitBatch(b)
	}
}

// batch is the members of one transaction and the transaction.
type batch struct {
	members []*commitReq
	conds   map[string]int64 // guarded key -> revision
	writers map[string]int   // written key -> members writing it
	ops     int
	bytes   int
}

// fits reports whether r can join b: its guards agree with b's, its DA
// is not in b, and b stays within the store's limits.
func (b *batch) fits(r *commitReq) bool {
	newConds, newOps := 0, 0
	for _, cd := range r.txn.Conds {
		rev, ok := b.conds[cd.Key]
		if ok && (rev != cd.ModRevision || cd.ModRevision == 0) {
			return false // another revision, or a DA name already in b
		}
		if !ok {
			newConds++
		}
	}
	for _, op := range r.txn.Ops {
		if b.writers[op.Key] == 0 {
			newOps++
		}
	}
	return len(b.conds)+newConds <= store.MaxTxnOps && b.ops+newOps <= store.MaxTxnOps &&
		b.bytes+r.bytes <= store.MaxTxnBytes
}

func (b *batch) add(r *commitReq) {
	b.members = append(b.members, r)
	for _, cd := range r.txn.Conds {
		b.conds[cd.Key] = cd.ModRevision
	}
	for _, op := range r.txn.Ops {
		if b.writers[op.Key] == 0 {
			b.ops++
		}
		b.writers[op.Key]++
	}
	b.bytes += r.bytes
}

// takeBatch takes the queued creates that fit in one transaction, in
// queue order. c.mu is held.
func (c *candCache) takeBatch() *batch {
	b := &batch{conds: map[string]int64{}, writers: map[string]int{}}
	rest := c.queue[:0]
	for _, r := range c.queue {
		if len(b.members) == 0 || b.fits(r) {
			b.add(r)
		} else {
			rest = append(rest, r)
		}
	}
	clear(c.queue[len(rest):])
	c.queue = rest
	return b
}

// txn is the batch's transaction: every member's guards and writes, each
// PD and CN written once with the reservations of every member that chose
// it.
func (b *batch) txn() (store.Txn, error) {
	t := store.Txn{Conds: make([]store.Cond, 0, len(b.conds)), Ops: make([]store.Op, 0, b.ops)}
	guarded := make(map[string]bool, len(b.conds))
	for _, r := range b.members {
		for _, cd := range r.txn.Conds {
			if !guarded[cd.Key] {
				guarded[cd.Key] = true
				t.Conds = append(t.Conds, cd)
			}
		}
	}
	shared := map[string]any{} // key -> merged PhysicalDisk or ControllerNode
	for _, r := range b.members {
		pl := r.pl
		for _, pd := range pl.pds {
			key := KeyPD(pd.DNName, pd.Name)
			if b.writers[key] < 2 {
				continue
			}
			m, ok := shared[key].(PhysicalDisk)
			if !ok {
				m = pd
				m.Status = Status{}
			}
			m.AllocatedBytes += pl.res.bytes
			m.VDCount++
			shared[key] = m
		}
		for _, cn := range pl.cns {
			key := KeyCN(cn.Name)
			if b.writers[key] < 2 {
				continue
			}
			m, ok := shared[key].(ControllerNode)
			if !ok {
				m = cn
				m.Status = Status{}
			}
			m.CntlrCount++
			shared[key] = m
		}
	}
	for _, r := range b.members {
		for _, op := range r.txn.Ops {
			v, ok := shared[op.Key]
			switch {
			case !ok:
				t.Ops = append(t.Ops, op)
			case v != nil:
				val, err := json.Marshal(v)
				if err != nil {
					return t, fmt.Errorf("vda: encode %s: %w", op.Key, err)
				}
				t.Ops = append(t.Ops, store.Op{Key: op.Key, Value: val})
				shared[op.Key] = nil // written
			}
		}
	}
	return t, nil
}

// commitBatch commits b and reports to its members.
func (c *candCache) commitBatch(b *batch) {
	if len(b.members) == 1 {
		r := b.members[0]
		res, err := c.s.Txn(r.ctx, r.txn)
		c.settle(b.members, r.txn, res, err)
		return
	}
	t, err := b.txn()
	if err != nil {
		c.settle(b.members, t, store.TxnResult{}, err)
		return
	}
	ctx, cancel := allDone(b.members)
	defer cancel()
	res, err := c.s.Txn(ctx, t)
	c.batches.Add(1)
	if err != nil || res.Succeeded {
		c.settle(b.members, t, res, err)
		return
	}
	// A guard failed. Once the cache has seen the revision the guards were
	// checked at, the members whose PD, DN or CN guards no longer hold
	// (another writer, e.g. a Cluster of another portal, beat them) lose;
	// the others try again together.
	c.fallbacks.Add(1)
	if c.waitRev(ctx, res.Revision) == nil {
		c.mu.Lock()
		var live []*commitReq
		for _, r := range b.members {
			if c.stale(r) {
				c.release(&r.pl.res)
				r.done <- commitRes{stale: true, rev: res.Revision}
			} else {
				live = append(live, r)
			}
		}
		c.mu.Unlock()
		if len(live) < len(b.members) && len(live) > 0 {
			nb := &batch{conds: map[string]int64{}, writers: map[string]int{}}
			for _, r := range live {
				nb.add(r)
			}
			if t, err = nb.txn(); err == nil {
				res, err = c.s.Txn(ctx, t)
			}
			if err != nil || res.Succeeded {
				c.settle(live, t, res, err)
				return
			}
		}
		b.members = live
	}
	// Still failing (a name taken, or a change the cache does not know
	// yet): the store decides each member on its own, in turn.
	for _, r := range b.members {
		res, err := c.s.Txn(r.ctx, r.txn)
		c.settle([]*commitReq{r}, r.txn, res, err)
	}
}

// stale reports whether one of r's guards on a PD, DN or CN does not
// hold in the cache. c.mu is held.
func (c *candCache) stale(r *commitReq) bool {
	for _, cd := range r.txn.Conds {
		if kind, _, _, _ := parseCandKey(cd.Key); kind != kindNone && c.revs[cd.Key] != cd.ModRevision {
			return true
		}
	}
	return false
}

// settle applies the outcome of t (the transaction of members) to the
// cache, releases the members' reservations and reports to them.
func (c *candCache) settle(members []*commitReq, t store.Txn, res store.TxnResult, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.settleLocked(members, t, res, err)
}

// settleLocked is settle with c.mu held.
func (c *candCache) settleLocked(members []*commitReq, t store.Txn, res store.TxnResult, err error) {
	ok := err == nil && res.Succeeded
	if ok {
		for _, op := range t.Ops {
			c.apply(op.Key, op.Value, op.Delete, res.Revision)
		}
		// t is the only change at its revision (every write transaction
		// has a revision of its own): if the cache had every change
		// before it, it now has every change up to it, and creates that
		// read this revision need not wait for the watch to deliver it.
		if c.rev == res.Revision-1 {
			c.advance(res.Revision)
		}
		c.rebase(t, res.Revision)
	}
	for _, r := range members {
		c.release(&r.pl.res)
		r.done <- commitRes{ok: ok, rev: res.Revision, err: err}
	}
}

// rebase moves the queued creates that guard a PD or CN that t (just
// committed at rev) wrote, at the revision t guarded it at, onto what t
// wrote: their guard becomes rev and their write adds to t's. Nothing
// but t changed the key between the two revisions (t's guard held), so
// this is the transaction they would have made had they placed after t;
// without it they would fail on their guard and place again. c.mu is held.
func (c *candCache) rebase(t store.Txn, rev int64) {
	if len(c.queue) == 0 {
		return
	}
	old := make(map[string]int64, len(t.Conds))
	for _, cd := range t.Conds {
		old[cd.Key] = cd.ModRevision
	}
	moved := func(key string, guarded int64) bool {
		before, ok := old[key]
		return ok && before == guarded && c.revs[key] == rev
	}
	for _, r := range c.queue {
		pl, changed := r.pl, false
		for i, pd := range pl.pds {
			if key := KeyPD(pd.DNName, pd.Name); moved(key, pl.pdRevs[i]) {
				e := pl.res.pds[i]
				pl.pds[i] = e.spec
				pl.pds[i].Status = e.status
				pl.pdRevs[i] = rev
				changed = true
			}
		}
		for i, cn := range pl.cns {
			if key := KeyCN(cn.Name); moved(key, pl.cnRevs[i]) {
				n := pl.res.cns[i]
				pl.cns[i] = n.spec
				pl.cns[i].Status = n.status
				pl.cnRevs[i] = rev
				changed = true
			}
		}
		if !changed {
			continue
		}
		if t, err := r.build(pl); err == nil {
			r.txn, r.bytes = t, txnBytes(t)
		}
	}
}

// allDone returns a context that ends when the contexts of every member
// have ended (a batch is abandoned only if no member waits for it).
func allDone(members []*commitReq) (context.Context, context.CancelFunc) {
	ctxs := make([]context.Context, len(members))
	for i, r := range members {
		ctxs[i] = r.ctx
	}
	return allDoneCtx(ctxs)
}

// allDoneCtx returns a context (with the values of the first of ctxs)
// that ends when every one of ctxs has ended.
func allDoneCtx(ctxs []context.Context) (context.Context, context.CancelFunc) {
	if len(ctxs) == 1 {
		return context.WithCancel(ctxs[0])
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctxs[0]))
	var left atomic.Int64
	left.Store(int64(len(ctxs)))
	stops := make([]func() bool, 0, len(ctxs))
	for _, x := range ctxs {
		stops = append(stops, context.AfterFunc(x, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// revGate coalesces the store revision reads of concurrent creates: a
// create needs a read that started after it did (so it sees every write
// completed before it), and every create that arrives while one read is
// in flight shares the next one.
type revGate struct {
	mu      sync.Mutex
	running bool
	next    *revCall // waiting to start, nil if none
}

type revCall struct {
	waiters []context.Context
	done    chan struct{}
	rev     int64
	err     error
}

// revision returns a store revision read after the call began.
func (g *revGate) revision(ctx context.Context, s store.Store) (int64, error) {
	g.mu.Lock()
	if !g.running {
		// Nobody reads: read now, in this goroutine.
		g.running = true
		g.mu.Unlock()
		rev, err := s.Revision(ctx)
		g.mu.Lock()
		g.running = false
		if g.next != nil {
			g.start(s)
		}
		g.mu.Unlock()
		return rev, err
	}
	if g.next == nil {
		g.next = &revCall{done: make(chan struct{})}
	}
	call := g.next
	call.waiters = append(call.waiters, ctx)
	g.mu.Unlock()
	select {
	case <-call.done:
		return call.rev, call.err
	case <-ctx.Done():
		return 0, fmt.Errorf("vda: store revision: %w", ctx.Err())
	}
}

// start runs g.next. g.mu is held.
func (g *revGate) start(s store.Store) {
	call := g.next
	g.next, g.running = nil, true
	go func() {
		ctx, cancel := allDoneCtx(call.waiters)
		call.rev, call.err = s.Revision(ctx)
		cancel()
		close(call.done)
		g.mu.Lock()
		defer g.mu.Unlock()
		g.running = false
		if g.next != nil {
			g.start(s)
		}
	}()
}
