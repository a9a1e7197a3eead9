package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/store"
)

// failoverAttempts bounds the re-reads of one batch on conflicts.
const failoverAttempts = 10

// failovers moves the primary of every DA whose primary is on a controller
// node this monitor owns and judges failed. It is level-triggered (every
// round checks), so a failover a dead monitor left uncommitted is redone
// by the next owner. It commits batches of DAs per store transaction, each
// guarded by the DA's revision and by this monitor's member key, and
// returns how many DAs it moved and, if some wait for a held-down node, when
// to decide them again.
func (m *Monitor) failovers(ctx context.Context, snap *Snapshot) (int, time.Duration, error) {
	failed := map[string]bool{}
	for _, cn := range snap.CNs {
		if m.members.Owns(cn.Spec.ID) && m.healthOf(cn.Spec.ID) == failover.Failed {
			failed[cn.Spec.ID] = true
		}
	}
	var todo []*Object[vda.DiskArray]
	for _, name := range sortedKeys(snap.DAs) {
		da := snap.DAs[name]
		if p, ok := da.Spec.Primary(); ok && failed[p.CNID] {
			todo = append(todo, da)
		}
	}
	m.forgetNoPrimary(todo)
	if len(todo) == 0 {
		m.setWaiting(0)
		return 0, 0, nil
	}
	member, err := m.cfg.Store.Get(ctx, MembersPrefix+m.cfg.ID)
	if err != nil {
		return 0, 0, fmt.Errorf("monitor: failover needs a live membership: %w", err)
	}
	nodes := m.failoverNodes(snap)
	moved := 0
	held := map[string]time.Duration{}
	var errs []error
	for len(todo) > 0 {
		n := min(len(todo), store.MaxTxnOps-1) // one condition guards the member key
		k, h, err := m.commitBatch(ctx, todo[:n], nodes, member)
		moved += k
		maps.Copy(held, h)
		errs = append(errs, err)
		todo = todo[n:]
	}
	m.setWaiting(len(held))
	var wake time.Duration
	for _, d := range held {
		if wake == 0 || d < wake {
			wake = d
		}
	}
	return moved, wake, errors.Join(errs...)
}

// failoverNodes describes every CN for failover.ChoosePrimary: healthy as
// tracked here (owned nodes) or as last recorded by their owner, and not
// offline; loaded with the primaries it serves; held down if it failed
// recently (known for owned nodes only).
func (m *Monitor) failoverNodes(snap *Snapshot) map[string]failover.Node {
	nodes := map[string]failover.Node{}
	now := m.cfg.Now()
	m.healthMu.Lock()
	defer m.healthMu.Unlock()
	for _, cn := range snap.CNs {
		healthy := snap.Status(cn.Key).Health == vda.HealthHealthy
		if st := m.tracker.State(cn.Spec.ID); st != failover.Unknown {
			healthy = st == failover.Healthy
		}
		cause, failed := m.tracker.FailedBy(cn.Spec.ID)
		nodes[cn.Spec.ID] = failover.Node{ID: cn.Spec.ID, Location: cn.Spec.Location, Healthy: healthy && !cn.Spec.Offline,
			HoldDown: m.tracker.HoldDown(cn.Spec.ID, now), Dead: failed && cause == failover.Refused}
	}
	for _, da := range snap.DAs {
		if p, ok := da.Spec.Primary(); ok {
			n := nodes[p.CNID]
			n.Load++
			nodes[p.CNID] = n
		}
	}
	return nodes
}

func controllers(da vda.DiskArray) []failover.Controller {
	out := make([]failover.Controller, len(da.Cntlrs))
	for i, c := range da.Cntlrs {
		out[i] = failover.Controller{ID: c.ID, Idx: c.Idx, CNID: c.CNID, Primary: c.ID == da.PrimaryCntlrID}
	}
	return out
}

// commitBatch decides and commits one batch in one transaction, re-reading
// the batch on a conflict. nodes' loads are updated with what it commits.
// It returns how many DAs it moved, and the DAs (by ID) that wait for a
// held-down node with how long.
func (m *Monitor) commitBatch(ctx context.Context, batch []*Object[vda.DiskArray], nodes map[string]failover.Node,
	member store.KV) (int, map[string]time.Duration, error) {
	for attempt := 0; attempt < failoverAttempts; attempt++ {
		cur := maps.Clone(nodes) // loads as this attempt commits them
		txn := store.Txn{Conds: []store.Cond{{Key: member.Key, ModRevision: member.ModRevision}}}
		var moved []string
		var edits []statusEdit
		held := map[string]time.Duration{}
		for _, da := range batch {
			if p, _ := da.Spec.Primary(); m.members.Guard(p.CNID) != nil {
				continue // no longer ours to fail over
			}
			d, err := failover.ChoosePrimary(controllers(da.Spec), cur, uint64(da.Spec.Epoch))
			var hd *failover.HeldDownError
			if errors.As(err, &hd) {
				held[da.Spec.ID] = hd.Wait
				m.waitHeldDown(ctx, da, hd)
				continue
			}
			if err != nil {
				m.noHealthySecondary(ctx, da, err)
				continue
			}
			next := da.Spec
			next.Cntlrs = append([]vda.Cntlr(nil), da.Spec.Cntlrs...)
			for i := range next.Cntlrs {
				next.Cntlrs[i].Primary = next.Cntlrs[i].ID == d.NewPrimary.ID
			}
			next.PrimaryCntlrID, next.Epoch = d.NewPrimary.ID, int64(d.Epoch)
			b, err := json.Marshal(next)
			if err != nil {
				return 0, held, fmt.Errorf("monitor: encode %s: %w", da.Key, err)
			}
			txn.Conds = append(txn.Conds, store.Cond{Key: da.Key, ModRevision: da.ModRevision})
			txn.Ops = append(txn.Ops, store.Op{Key: da.Key, Value: b})
			for id, delta := range map[string]int{d.NewPrimary.CNID: 1, d.OldPrimary.CNID: -1} {
				n := cur[id]
				n.Load += delta
				cur[id] = n
			}
			moved = append(moved, fmt.Sprintf("%s:%d->%d", da.Spec.Name, d.OldPrimary.Idx, d.NewPrimary.Idx))
			edits = append(edits, statusEdit{specKey: da.Key, edit: replaceFailed(d.OldPrimary.ID,
				fmt.Sprintf("controller node %s failed", cntlrCN(da.Spec, d.OldPrimary.ID)))})
		}
		if len(txn.Ops) == 0 {
			return 0, held, nil
		}
		res, err := m.cfg.Store.Txn(ctx, txn)
		if err != nil {
			return 0, held, fmt.Errorf("monitor: commit failover: %w", err)
		}
		if res.Succeeded {
			maps.Copy(nodes, cur)
			m.countFailovers(len(moved))
			m.log.Info("primaries moved", "count", len(moved), "revision", res.Revision)
			m.log.Debug("primaries moved", "das", moved)
			m.goAsync(func() {
				if _, err := m.writeAll(ctx, edits); err != nil && ctx.Err() == nil {
					m.log.Warn("cannot write disk array status", "error", err)
				}
			})
			return len(moved), held, nil
		}
		if batch, err = m.reread(ctx, batch); err != nil || len(batch) == 0 {
			return 0, nil, err
		}
	}
	return 0, nil, fmt.Errorf("%w: failover batch kept conflicting", store.ErrConflict)
}

func (m *Monitor) countFailovers(n int) {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	m.stats.Failovers += n
	m.stats.LastFailover = m.cfg.Now()
}

func (m *Monitor) setWaiting(n int) {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	m.stats.Waiting = n
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

// reread fetches the batch's DAs again and keeps those whose primary is
// still on a failed node.
func (m *Monitor) reread(ctx context.Context, batch []*Object[vda.DiskArray]) ([]*Object[vda.DiskArray], error) {
	var out []*Object[vda.DiskArray]
	for _, da := range batch {
		kv, err := m.cfg.Store.Get(ctx, da.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var spec vda.DiskArray
		if json.Unmarshal(kv.Value, &spec) != nil || checkDA(spec.Name, &spec) != nil {
			continue
		}
		if p, ok := spec.Primary(); ok && m.healthOf(p.CNID) == failover.Failed {
			out = append(out, &Object[vda.DiskArray]{Key: kv.Key, ModRevision: kv.ModRevision, Spec: spec})
		}
	}
	return out, nil
}

// noHealthySecondary records on the DA that its primary's node failed and
// no secondary can take over (once per distinct error).
func (m *Monitor) noHealthySecondary(ctx context.Context, da *Object[vda.DiskArray], cause error) {
	p, _ := da.Spec.Primary()
	msg := fmt.Sprintf("controller node %s failed; no healthy secondary to fail over to (%v)", p.CNName, cause)
	if m.recordNoPrimary(ctx, da, msg) {
		m.log.Warn("cannot fail over", "da", da.Spec.Name, "error", cause)
	}
}

// waitHeldDown records on the DA that its primary's node failed and that it
// waits for held-down nodes (once per distinct set of nodes).
func (m *Monitor) waitHeldDown(ctx context.Context, da *Object[vda.DiskArray], hd *failover.HeldDownError) {
	p, _ := da.Spec.Primary()
	names := make([]string, 0, len(hd.Nodes))
	for _, id := range hd.Nodes {
		for _, c := range da.Spec.Cntlrs {
			if c.CNID == id {
				names = append(names, c.CNName)
				break
			}
		}
	}
	msg := fmt.Sprintf("controller node %s failed; waiting for %s to be stable for %v (it failed recently)",
		p.CNName, strings.Join(names, " or "), m.cfg.Failover.HoldDown)
	if m.recordNoPrimary(ctx, da, msg) {
		m.log.Info("failover waits for a held-down node", "da", da.Spec.Name, "nodes", names, "wait", hd.Wait)
	}
}

// recordNoPrimary writes msg as the failed primary's status part unless it
// is what was last written for the DA, and reports whether it was new.
func (m *Monitor) recordNoPrimary(ctx context.Context, da *Object[vda.DiskArray], msg string) bool {
	p, _ := da.Spec.Primary()
	m.mu.Lock()
	same := m.noPrimary[da.Spec.ID] == msg
	m.noPrimary[da.Spec.ID] = msg
	m.mu.Unlock()
	if same {
		return false
	}
	m.goAsync(func() {
		e := statusEdit{specKey: da.Key, edit: setPart(p.ID, vda.Status{Health: vda.HealthFailed, ErrorMsg: msg})}
		if err := m.writeStatus(ctx, e); err != nil && !errors.Is(err, errSpecChanged) && ctx.Err() == nil {
			m.log.Warn("cannot write disk array status", "da", da.Spec.Name, "error", err)
		}
	})
	return true
}

// forgetNoPrimary drops the recorded errors of DAs that no longer need a
// failover, so a later failure is reported again.
func (m *Monitor) forgetNoPrimary(todo []*Object[vda.DiskArray]) {
	still := map[string]bool{}
	for _, da := range todo {
		still[da.Spec.ID] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.noPrimary {
		if !still[id] {
			delete(m.noPrimary, id)
		}
	}
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
// controllers and exporter ports (a DA whose primary it was shows failed
// until the failover is pushed).
func (m *Monitor) writeNodeHealth(w *worker, h vda.Health, failedMsg string) {
	m.mu.Lock()
	snap := m.snap
	m.mu.Unlock()
	w.statusMu.Lock() // never held while waiting for m.mu (dispatch holds m.mu and stops workers)
	defer w.statusMu.Unlock()
	edits := []statusEdit{{specKey: w.key, edit: func(st *vda.Status) {
		st.Health = h
		if h == vda.HealthFailed {
			st.ErrorMsg = failedMsg
		} else if st.ErrorMsg != "" && w.syncErrorEmpty() {
			st.ErrorMsg = ""
		}
	}}}
	if h == vda.HealthFailed && m.healthOf(w.id) == failover.Failed && snap != nil {
		edits = append(edits, failedEdits(snap, w)...)
	}
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
			for _, exp := range snap.Exps {
				if exp.Spec.DAID != da.Spec.ID {
					continue
				}
				if port, ok := portOf(&exp.Spec, c.Idx); ok {
					edits = append(edits, statusEdit{specKey: exp.Key, edit: mark(port.ID)})
				}
			}
		}
	}
	return edits
}
