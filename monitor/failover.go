package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/store"
)

// The monitor is the failover engine's default wiring: workers probe their
// nodes through it (worker.Probe, the agent's Health call), its Leadership
// is the store Membership, and its Actuator (storeActuator) commits a
// failover as one store transaction guarded by each DA's revision and by
// the member key; fencing and promotion are the desired state that the
// push loop then executes.

// viewOf describes snap for the failover engine: every CN with its
// recorded health (of nodes owned by another monitor) and whether it is
// offline, every DA (by name) with the object it came from as its Ref.
func viewOf(snap *Snapshot) *failover.View {
	v := &failover.View{}
	for _, key := range sortedKeys(snap.CNs) {
		cn := snap.CNs[key]
		v.Nodes = append(v.Nodes, failover.NodeInfo{ID: cn.Spec.ID, Location: cn.Spec.Location,
			Healthy: snap.Status(cn.Key).Health == vda.HealthHealthy, Offline: cn.Spec.Offline})
	}
	for _, name := range sortedKeys(snap.DAs) {
		v.Arrays = append(v.Arrays, arrayOf(snap.DAs[name]))
	}
	return v
}

func arrayOf(da *Object[vda.DiskArray]) failover.Array {
	a := failover.Array{ID: da.Spec.ID, Name: da.Spec.Name, Epoch: uint64(da.Spec.Epoch), Ref: da,
		Controllers: make([]failover.Controller, len(da.Spec.Cntlrs))}
	for i, c := range da.Spec.Cntlrs {
		a.Controllers[i] = failover.Controller{ID: c.ID, Idx: c.Idx, CNID: c.CNID, Primary: c.ID == da.Spec.PrimaryCntlrID}
	}
	return a
}

// Fence returns the member key as it is now: a failover committed under it
// fails if this monitor's lease was lost (and the key re-created) since.
func (m *Membership) Fence(ctx context.Context) (failover.Fence, error) {
	if len(m.Members()) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotMember, m.cfg.ID)
	}
	kv, err := m.s.Get(ctx, MembersPrefix+m.cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("monitor: failover needs a live membership: %w", err)
	}
	return kv, nil
}

var _ failover.Leadership = (*Membership)(nil)

// storeActuator commits the engine's failovers to the store and records on
// the DAs why those that cannot move wait.
type storeActuator struct{ m *Monitor }

var (
	_ failover.Actuator = storeActuator{}
	_ failover.Reporter = storeActuator{}
)

// freshWait bounds how long a reload waits for the snapshot cache to
// reach the store's revision. Only writes outside vda.Prefix (which the
// cache does not see) make it wait that long; the commit that follows is
// guarded by the revisions it read, so a stale view only conflicts again.
const freshWait = time.Second

// Load returns the cluster at the store's current revision (after a
// commit conflicted): the snapshot cache once it has caught up with it.
func (a storeActuator) Load(ctx context.Context) (*failover.View, error) {
	rev, err := a.m.cfg.Store.Revision(ctx)
	if err != nil {
		return nil, fmt.Errorf("monitor: reload: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, freshWait)
	defer cancel()
	snap, err := a.m.snaps.AtLeast(wctx, rev)
	if err != nil && ctx.Err() == nil {
		a.m.log.Debug("snapshot cache has not reached the store's revision: deciding on what it has", "revision", rev)
		snap, err = a.m.snaps.Snapshot(ctx)
	}
	if err != nil {
		return nil, err
	}
	return viewOf(snap), nil
}

// Commit writes every move's new primary and epoch in one transaction,
// guarded by the member key (the fence) and each DA's revision, then
// records on each DA why its old primary failed.
func (a storeActuator) Commit(ctx context.Context, fence failover.Fence, moves []failover.Move) error {
	member, ok := fence.(store.KV)
	if !ok {
		return fmt.Errorf("monitor: fence %T is not a member key", fence)
	}
	txn := store.Txn{Conds: []store.Cond{{Key: member.Key, ModRevision: member.ModRevision}}}
	var edits []statusEdit
	for _, mv := range moves {
		da := mv.Array.Ref.(*Object[vda.DiskArray])
		d := mv.Decision
		next := da.Spec
		next.Cntlrs = append([]vda.Cntlr(nil), da.Spec.Cntlrs...)
		for i := range next.Cntlrs {
			next.Cntlrs[i].Primary = next.Cntlrs[i].ID == d.NewPrimary.ID
		}
		next.PrimaryCntlrID, next.Epoch = d.NewPrimary.ID, int64(d.Epoch)
		b, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("monitor: encode %s: %w", da.Key, err)
		}
		txn.Conds = append(txn.Conds, store.Cond{Key: da.Key, ModRevision: da.ModRevision})
		txn.Ops = append(txn.Ops, store.Op{Key: da.Key, Value: b})
		edits = append(edits, statusEdit{specKey: da.Key, edit: replaceFailed(d.OldPrimary.ID,
			fmt.Sprintf("controller node %s failed", cntlrCN(da.Spec, d.OldPrimary.ID)))})
	}
	res, err := a.m.cfg.Store.Txn(ctx, txn)
	if err != nil {
		return err
	}
	if !res.Succeeded {
		return failover.ErrConflict
	}
	for prev := a.m.committed.Load(); prev < res.Revision && !a.m.committed.CompareAndSwap(prev, res.Revision); {
		prev = a.m.committed.Load()
	}
	a.m.log.Debug("failover committed", "das", len(moves), "revision", res.Revision)
	byNode := map[string]int{}
	for _, mv := range moves {
		byNode[mv.Decision.OldPrimary.CNID]++
	}
	for id, n := range byNode {
		a.m.cfg.Metrics.FailedOver(id, n)
	}
	a.m.goAsync(func() {
		if _, err := a.m.writeAll(ctx, edits); err != nil && ctx.Err() == nil {
			a.m.log.Warn("cannot write disk array status", "error", err)
		}
	})
	return nil
}

// Blocked records on the DA that its primary's node failed and that it
// waits for held-down nodes, or that no secondary can take over.
func (a storeActuator) Blocked(ctx context.Context, arr failover.Array, cause error) {
	da := arr.Ref.(*Object[vda.DiskArray])
	p, _ := da.Spec.Primary()
	msg := fmt.Sprintf("controller node %s failed; no healthy secondary to fail over to (%v)", p.CNName, cause)
	var hd *failover.HeldDownError
	if errors.As(cause, &hd) {
		names := make([]string, 0, len(hd.Nodes))
		for _, id := range hd.Nodes {
			for _, c := range da.Spec.Cntlrs {
				if c.CNID == id {
					names = append(names, c.CNName)
					break
				}
			}
		}
		msg = fmt.Sprintf("controller node %s failed; waiting for %s to be stable for %v (it failed recently)",
			p.CNName, strings.Join(names, " or "), a.m.cfg.Failover.HoldDown)
	}
	a.m.goAsync(func() {
		e := statusEdit{specKey: da.Key, edit: setPart(p.ID, vda.Status{Health: vda.HealthFailed, ErrorMsg: msg})}
		if err := a.m.writeStatus(ctx, e); err != nil && !errors.Is(err, errSpecChanged) && ctx.Err() == nil {
			a.m.log.Warn("cannot write disk array status", "da", da.Spec.Name, "error", err)
		}
	})
}

// replaceFailed sets the message of a failed part (the old primary's, which
// may say that no secondary could take over); a part that is healthy again
// is left alone.
func replaceFailed(id, msg string) func(*vda.Status) {
	return func(st *vda.Status) {
		if st.Parts[id].Health == vda.HealthFailed {
			st.Parts[id] = vda.Status{Health: vda.HealthFailed, ErrorMsg: msg}
		}
	}
}

func cntlrCN(da vda.DiskArray, id string) string {
	for _, c := range da.Cntlrs {
		if c.ID == id {
			return c.CNName
		}
	}
	return ""
}

// phases is the push order of a failover among the nodes this monitor
// drives: disk nodes (fence), then new primaries, then other controllers.
type phases struct {
	dns, primaries, others []*worker
}

func (p phases) empty() bool { return len(p.primaries)+len(p.others) == 0 }

func (p phases) held() []*worker { return append(append([]*worker(nil), p.primaries...), p.others...) }

// members is every worker of the phases: their pushes of older states in
// flight are cancelled (the fence should not wait for them).
func (p phases) members() map[*worker]bool {
	out := map[*worker]bool{}
	for _, w := range append(p.held(), p.dns...) {
		out[w] = true
	}
	return out
}

// fencePhases finds the DAs whose primary or epoch changed since prev.
// Called with m.mu held.
func (m *Monitor) fencePhases(prev, snap *Snapshot) phases {
	if prev == nil {
		return phases{}
	}
	dns, prim, others := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for name, da := range snap.DAs {
		old, ok := prev.DAs[name]
		if !ok || old.Spec.ID != da.Spec.ID ||
			(old.Spec.Epoch == da.Spec.Epoch && old.Spec.PrimaryCntlrID == da.Spec.PrimaryCntlrID) {
			continue
		}
		for _, vd := range da.Spec.VDs {
			dns[vd.DNID] = true
		}
		for _, c := range da.Spec.Cntlrs {
			if c.ID == da.Spec.PrimaryCntlrID {
				prim[c.CNID] = true
			} else {
				others[c.CNID] = true
			}
		}
	}
	var p phases
	pick := func(ids map[string]bool, skip map[string]bool) []*worker {
		var out []*worker
		for id := range ids {
			if w, ok := m.workers[id]; ok && !skip[id] {
				out = append(out, w)
			}
		}
		return out
	}
	p.dns = pick(dns, nil)
	p.primaries = pick(prim, nil)
	p.others = pick(others, prim)
	return p
}

// runPhases releases the held controllers in order, waiting at most
// PhaseTimeout for each phase's pushes of generation gen to be attempted.
// Nodes judged failed are not waited for.
func (m *Monitor) runPhases(ctx context.Context, p phases, gen int64) {
	released := false
	defer func() {
		if !released {
			for _, w := range p.primaries {
				w.release()
			}
		}
		for _, w := range p.others {
			w.release()
		}
	}()
	m.waitPhase(ctx, p.dns, gen)
	for _, w := range p.primaries {
		w.release()
	}
	released = true
	m.waitPhase(ctx, p.primaries, gen)
}

func (m *Monitor) waitPhase(ctx context.Context, ws []*worker, gen int64) {
	t := time.NewTimer(m.cfg.PhaseTimeout)
	defer t.Stop()
	for _, w := range ws {
		if m.healthOf(w.id) == failover.Failed {
			continue
		}
		select {
		case <-w.attemptedAt(gen):
		case <-t.C:
			m.log.Debug("failover phase timed out", "node", w.name)
			return
		case <-ctx.Done():
			return
		}
	}
}

// writeNodeHealth records a node's health and, when it failed, marks what
// it holds failed: a DN's PDs and VDs (its DAs show degraded), a CN's
// controllers and exporter ports. A CN's marks wait for the failover its
// failure causes (decided in a round after round after): they are one or
// more status writes per disk array it served, and written while the
// failover commits and pushes they would compete with it for the store and
// the CPU, and conflict with its commits. Until then a disk array whose
// primary it was keeps its last status.
func (m *Monitor) writeNodeHealth(w *worker, h vda.Health, failedMsg string, after int64) {
	edits := []statusEdit{{specKey: w.key, edit: func(st *vda.Status) {
		st.Health = h
		if h == vda.HealthFailed {
			st.ErrorMsg = failedMsg
		} else if st.ErrorMsg != "" && w.syncErrorEmpty() {
			st.ErrorMsg = ""
		}
	}}}
	if h != vda.HealthFailed {
		m.writeHealthEdits(w, edits)
		return
	}
	if w.role == RoleCN {
		m.writeHealthEdits(w, edits)
		edits = nil
		m.pushes.await(w.ctx, after, 2*m.cfg.PhaseTimeout)
	}
	m.mu.Lock()
	snap := m.snap
	m.mu.Unlock()
	if m.healthOf(w.id) == failover.Failed && snap != nil {
		edits = append(edits, failedEdits(snap, w)...)
	}
	m.writeHealthEdits(w, edits)
}

// writeHealthEdits writes what writeNodeHealth found, in order with the
// worker's other status writes.
func (m *Monitor) writeHealthEdits(w *worker, edits []statusEdit) {
	if len(edits) == 0 {
		return
	}
	w.statusMu.Lock() // never held while waiting for m.mu (dispatch holds m.mu and stops workers)
	defer w.statusMu.Unlock()
	if _, err := m.writeAll(w.ctx, edits); err != nil && w.ctx.Err() == nil {
		w.log.Warn("cannot write node health", "error", err)
	}
}

func (w *worker) syncErrorEmpty() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncErr == ""
}

// failedEdits marks the objects on a failed node failed (keeping a failed
// part's message, e.g. that no secondary can take over).
func failedEdits(snap *Snapshot, w *worker) []statusEdit {
	msg := fmt.Sprintf("%s node %s failed", map[Role]string{RoleDN: "disk", RoleCN: "controller"}[w.role], w.name)
	failed := vda.Status{Health: vda.HealthFailed, ErrorMsg: msg}
	mark := func(id string) func(*vda.Status) {
		return func(st *vda.Status) {
			if st.Parts[id].Health != vda.HealthFailed {
				setPart(id, failed)(st)
			}
		}
	}
	var edits []statusEdit
	// Exporters by DA ID, in key order, once: scanning every exporter for
	// each DA was O(DAs x exporters) on the failure path (10,000 DAs: 10^8).
	expsOf := map[string][]*Object[vda.Exporter]{}
	for _, key := range sortedKeys(snap.Exps) {
		exp := snap.Exps[key]
		expsOf[exp.Spec.DAID] = append(expsOf[exp.Spec.DAID], exp)
	}
	for _, key := range sortedKeys(snap.PDs) {
		if pd := snap.PDs[key]; pd.Spec.DNID == w.id {
			edits = append(edits, statusEdit{specKey: key, edit: func(st *vda.Status) {
				st.Health, st.ErrorMsg = vda.HealthFailed, msg
			}})
		}
	}
	for _, name := range sortedKeys(snap.DAs) {
		da := snap.DAs[name]
		for _, vd := range da.Spec.VDs {
			if vd.DNID == w.id {
				edits = append(edits, statusEdit{specKey: da.Key, edit: mark(vd.ID)})
			}
		}
		for _, c := range da.Spec.Cntlrs {
			if c.CNID != w.id {
				continue
			}
			edits = append(edits, statusEdit{specKey: da.Key, edit: mark(c.ID)})
			for _, exp := range expsOf[da.Spec.ID] {
				if port, ok := portOf(&exp.Spec, c.Idx); ok {
					edits = append(edits, statusEdit{specKey: exp.Key, edit: mark(port.ID)})
				}
			}
		}
	}
	return edits
}

// failoverPushes tracks the failovers' pushes: the last round dispatched
// and the failover phases (runPhases) still running.
type failoverPushes struct {
	mu       sync.Mutex
	round    int64 // the last round dispatched
	inFlight int   // failover phases running
	changed  signal
}

func (p *failoverPushes) dispatched(round int64) {
	p.mu.Lock()
	p.round = max(p.round, round)
	p.mu.Unlock()
	p.changed.signal()
}

func (p *failoverPushes) phaseStarted() {
	p.mu.Lock()
	p.inFlight++
	p.mu.Unlock()
}

func (p *failoverPushes) phaseDone() {
	p.mu.Lock()
	p.inFlight--
	p.mu.Unlock()
	p.changed.signal()
}

// await returns once a round after round after has been dispatched and no
// failover phase runs, or after timeout, or when ctx ends.
func (p *failoverPushes) await(ctx context.Context, after int64, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		ch, _ := p.changed.wait()
		p.mu.Lock()
		done := p.round > after && p.inFlight == 0
		p.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
