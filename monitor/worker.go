package monitor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/failover"
)

// worker drives one owned node: one goroutine pushes its desired state
// (coalescing offers: only the newest plan is pushed), another probes its
// health. A slow or dead agent only ever delays its own worker.
type worker struct {
	m      *Monitor
	id     string
	name   string
	addr   string // where the agent is reached (Target.Address)
	role   Role
	key    string
	log    hclog.Logger
	client AgentConn
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	kick   chan struct{} // cap 1: a new plan or a release
	urgent chan struct{} // cap 1: cut the backoff (node came back)

	mu      sync.Mutex
	plan    *NodePlan
	snap    *Snapshot
	force   bool
	holds   int
	tried   int64 // highest generation attempted
	waiters []waiter
	syncErr string // last sync error written to the node status
	health  vda.Health
	// inflight cancels the push in flight (of generation inflightGen);
	// preempted says it was cancelled for a newer state.
	inflight    context.CancelFunc
	inflightGen int64
	preempted   bool
	statusMu    sync.Mutex   // serialises this node's status writes
	syncSince   atomic.Int64 // start of the Sync in flight (unix ns), 0 if none
	applied     atomic.Int64 // generation of the last push the agent applied
	sending     atomic.Int64 // generation of the push in flight, 0 if none
	suspect     atomic.Bool  // a Health showed state we did not push; cleared by a push

	// Push goroutine only: the last applied state, its reply, and whether
	// some of its statuses were dropped because their spec changed (they
	// are written again against the next snapshot).
	last      *delivered
	lastReply *agentpb.SyncReply
	stale     bool
	heldMsg   string
	// own holds, by spec key, this worker's part of each status as it
	// last wrote it or found it in a snapshot (see writeBack).
	own   map[string]vda.Status
	spare map[string]vda.Status // the own of the push before, reused
	// The state last applied with how many of its objects were ready, and
	// how often a push of this worker signalled Monitor.progress.
	progState  *delivered
	progReady  int
	progressed int64
}

type waiter struct {
	gen int64
	ch  chan struct{}
}

func (m *Monitor) newWorker(ctx context.Context, np *NodePlan) (*worker, error) {
	w := &worker{m: m, id: np.ID, name: np.Name, addr: np.Address, role: np.Role, key: np.Key,
		log:  m.log.With("node", np.Name, "role", np.Role.String()),
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1)}
	if np.Address != np.Name {
		w.log = w.log.With("address", np.Address)
	}
	conn, err := m.transport.Dial(ctx, Target{NodeID: np.ID, Name: np.Name, Address: np.Address, Role: np.Role})
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s at %s: %w", ErrAgent, np.Name, np.Address, err)
	}
	w.client = watchedConn{AgentConn: conn, w: w}
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.wg.Add(2)
	go func() { defer w.wg.Done(); w.run() }()
	go func() { defer w.wg.Done(); w.probe() }()
	return w, nil
}

// stop ends the worker's goroutines and waits for them.
func (w *worker) stop() {
	w.cancel()
	w.wg.Wait()
	_ = w.client.Close()
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// offer makes np (built from snap) the node's newest plan. With preempt
// (a failover), a push of an older state in flight is cancelled rather
// than waited for.
func (w *worker) offer(np *NodePlan, snap *Snapshot, force, preempt bool) {
	w.mu.Lock()
	w.plan, w.snap = np, snap
	w.force = w.force || force
	if preempt && w.inflight != nil && w.inflightGen < snap.Revision {
		w.inflight()
		w.preempted = true
	}
	w.mu.Unlock()
	poke(w.kick)
}

// forcePush pushes the newest plan again now, even if it is unchanged.
func (w *worker) forcePush() {
	w.mu.Lock()
	w.force = true
	w.mu.Unlock()
	poke(w.urgent)
	poke(w.kick)
}

// hold stops pushes until a matching release.
func (w *worker) hold() {
	w.mu.Lock()
	w.holds++
	w.mu.Unlock()
}

func (w *worker) release() {
	w.mu.Lock()
	w.holds--
	w.mu.Unlock()
	poke(w.kick)
}

// attemptedAt returns a channel closed once a push of a plan of generation
// gen or newer was attempted (or skipped as already applied), or the
// worker stopped.
func (w *worker) attemptedAt(gen int64) <-chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tried >= gen || w.ctx.Err() != nil {
		close(ch)
		return ch
	}
	w.waiters = append(w.waiters, waiter{gen: gen, ch: ch})
	return ch
}

func (w *worker) attempted(gen int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tried = max(w.tried, gen)
	keep := w.waiters[:0]
	for _, wt := range w.waiters {
		if wt.gen <= w.tried {
			close(wt.ch)
		} else {
			keep = append(keep, wt)
		}
	}
	w.waiters = keep
}

func (w *worker) run() {
	defer w.attempted(1 << 62) // release every waiter
	var backoff time.Duration
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.kick:
		}
		for w.ctx.Err() == nil {
			w.mu.Lock()
			np, snap, force, held := w.plan, w.snap, w.force, w.holds > 0
			if !held {
				w.force = false
			}
			w.mu.Unlock()
			if held || np == nil {
				break
			}
			since := w.progressMark()
			err := w.pushOnce(np, snap, force)
			w.attempted(snap.Revision)
			w.mu.Lock()
			preempted := w.preempted
			w.preempted = false
			w.mu.Unlock()
			if preempted {
				continue // the newer state at once, no backoff
			}
			if err == nil {
				backoff = 0
				w.mu.Lock()
				again := w.plan != np || w.force
				w.mu.Unlock()
				if !again {
					break
				}
				continue
			}
			backoff = nextBackoff(backoff, w.m.cfg.BackoffMin, w.m.cfg.BackoffMax)
			if errors.Is(err, errNotReady) {
				// The node answered and applied the state; what is missing
				// waits for other nodes (a primary for its VDs, a secondary
				// for its primary) or for newer state, not for this node
				// to recover: retry as soon as either shows up.
				w.log.Trace("objects not ready", "error", err, "retry_in", backoff)
				w.waitProgress(backoff, since, np)
				continue
			}
			w.log.Debug("push failed", "error", err, "retry_in", backoff)
			w.wait(backoff)
		}
	}
}

// wait sleeps d with jitter, cut short by ctx or an urgent signal.
func (w *worker) wait(d time.Duration) {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-w.ctx.Done():
	case <-t.C:
	case <-w.urgent:
	}
}

// progressMark is where waitProgress counts other nodes' progress from.
type progressMark struct {
	ch   <-chan struct{}
	gen  int64 // Monitor.progress signals so far
	mine int64 // of which this worker's
}

func (w *worker) progressMark() progressMark {
	ch, gen := w.m.progress.wait()
	return progressMark{ch: ch, gen: gen, mine: w.progressed}
}

// waitProgress is wait for a node whose objects are not ready yet: it is
// also cut short by a newer plan, or by another node's push that made
// progress since the mark (taken before the push that found the objects
// not ready, so none is missed; this worker's own progress does not count).
// Progress is acted on BackoffMin after the wait began at the earliest:
// a busy cluster makes progress all the time, and each retry costs the
// node a whole sync.
//
// A newer plan whose state for this node is the one being retried (the
// planner reused it) does not cut the wait: rounds are frequent while a
// cluster settles, and each would cost this node a whole sync.
func (w *worker) waitProgress(d time.Duration, since progressMark, np *NodePlan) {
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	var floor <-chan time.Time
	passed := w.m.cfg.BackoffMin <= 0
	if !passed {
		ft := time.NewTimer(w.m.cfg.BackoffMin)
		defer ft.Stop()
		floor = ft.C
	}
	ch, progressed := since.ch, false
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
			return
		case <-w.urgent:
			return
		case <-w.kick:
			if w.planChanged(np) {
				return
			}
		case <-floor:
			if progressed {
				return
			}
			passed, floor = true, nil
		case <-ch:
			var gen int64
			ch, gen = w.m.progress.wait()
			if gen-since.gen <= w.progressed-since.mine {
				continue // only this node's own
			}
			if passed {
				return
			}
			progressed, ch = true, nil // retry once the floor has passed
		}
	}
}

// planChanged reports whether the newest plan asks for something else than
// np: another state (by pointer: a rebuilt state counts as changed), a
// forced push, or a hold.
func (w *worker) planChanged(np *NodePlan) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.plan
	if w.force || w.holds > 0 || cur == nil || np == nil || cur.Request == nil || np.Request == nil {
		return true
	}
	a, b := deliveredOf(cur.Request), deliveredOf(np.Request)
	return *a != *b
}

// pushOnce sends np unless the agent already applied the same state (and
// nothing forces a re-sync), then writes the reported status back.
func (w *worker) pushOnce(np *NodePlan, snap *Snapshot, force bool) error {
	if np.Request == nil {
		if msg := np.Held.Error(); msg != w.heldMsg {
			w.heldMsg = msg
			w.log.Warn("node held: not pushed", "reason", np.Held)
		}
		return nil
	}
	w.heldMsg = ""
	req, err := w.boundRequest(np)
	if err != nil {
		w.last, w.lastReply = nil, nil
		w.setSyncError(err.Error())
		return err
	}
	bare := deliveredOf(req)
	if !force && bare.same(w.last) {
		if w.stale {
			w.log.Trace("rewriting dropped statuses", "revision", snap.Revision)
			// Same state as applied: the reply holds for this snapshot
			// too. What was written is in own and skipped unless the
			// snapshot shows it changed; what was dropped is not.
			w.writeBack(snap, np, w.lastReply, false)
		}
		return nil
	}
	if err := w.m.members.Guard(w.id); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.m.cfg.SyncTimeout)
	defer cancel()
	w.mu.Lock()
	w.inflight, w.inflightGen = cancel, snap.Revision
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inflight = nil
		w.mu.Unlock()
	}()
	start := time.Now()
	w.syncSince.Store(time.Now().UnixNano())
	// A Health answered while the agent applies req shows req's
	// generation before this push has returned: not a foreign push
	// (sawHealth). Cleared once applied is stored, or the push failed.
	w.sending.Store(req.GetGeneration())
	defer w.sending.Store(0)
	asked := w.m.engine.Asking(w.id)
	reply, err := w.client.Sync(ctx, req)
	w.syncSince.Store(0)
	w.m.cfg.Metrics.Pushed(w.name, time.Since(start), err)
	// A failover's next phase need not wait for this node's status writes.
	w.attempted(snap.Revision)
	if err != nil && ctx.Err() == context.Canceled && w.ctx.Err() == nil {
		return err // preempted by a failover's newer state: not a node problem
	}
	if err != nil {
		if status.Code(err) == codes.FailedPrecondition {
			// Another agent than the node's, a guard holding what no
			// monitor issued (re-anchored), or newer state: our snapshot
			// is stale.
			if rerr := w.recheck(np, req); rerr != nil {
				err = rerr
			} else {
				w.m.requestRound()
			}
		}
		w.last, w.lastReply = nil, nil
		err = fmt.Errorf("%w: sync %s: %w", ErrAgent, w.name, err)
		w.setSyncError(err.Error())
		return err
	}
	w.last, w.lastReply = bare, reply
	w.applied.Store(req.GetGeneration())
	w.suspect.Store(false)
	// A Sync that came back proves the node alive as well as a Health
	// does (a node busy with a large Sync may answer Health slowly), unless
	// the connection broke after it was sent: a stopping agent still
	// answers what it was asked.
	w.m.engine.Observe(w.id, failover.Observation{OK: true, Instance: reply.GetInstanceId(), Asked: asked})
	notReady, firstErr := 0, ""
	for _, o := range reply.GetObjects() {
		if !o.GetOk() {
			if notReady == 0 {
				firstErr = fmt.Sprintf("%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
			}
			notReady++
		}
	}
	w.log.Debug("synced", "generation", np.Request.GetGeneration(), "objects", len(reply.GetObjects()),
		"not_ready", notReady, "duration", time.Since(start))
	w.setSyncError("")
	w.writeBack(snap, np, reply, force)
	w.noteProgress(bare, len(reply.GetObjects())-notReady)
	if notReady > 0 {
		// Level-triggered: push the same state again (with backoff) until
		// every object is ready, e.g. a primary whose VDs were not there yet.
		w.last = nil
		return fmt.Errorf("%w: %d of %d objects not ready on %s (%s)", errNotReady, notReady, len(reply.GetObjects()),
			w.name, firstErr)
	}
	return nil
}

// noteProgress signals Monitor.progress if the push that applied state
// (with ready objects ready) changed something another node may wait for:
// new state, or more objects ready than the last push of the same state.
// Statuses are written back first, so what waits sees them.
func (w *worker) noteProgress(state *delivered, ready int) {
	same := state.same(w.progState)
	if same && ready <= w.progReady {
		w.progReady = ready
		return
	}
	w.progState, w.progReady = state, ready
	w.progressed++
	w.m.progress.signal()
}

// errNotReady: the agent applied the state but reported object errors.
var errNotReady = errors.New("monitor: objects not ready")

// writeBack writes the reply's statuses and marks DAs initialized.
//
// A node reports every object it holds on every push, and each status
// write is a share of a store transaction: on a node with thousands of
// objects that costs far more than the push. So, unless all
// is set (a forced push: resync, a node back from failure), an edit is not
// written when it is what this worker last wrote for that key (own) and
// the snapshot holds it already. Both are needed: the snapshot may predate
// this worker's last write of another value, and only the snapshot shows
// what others wrote. Others change a node's parts only while the node is
// failed (it is force-pushed when it returns) or with a change of the
// spec (the edits are guarded by the spec's revision).
func (w *worker) writeBack(snap *Snapshot, np *NodePlan, reply *agentpb.SyncReply, all bool) {
	edits, initialized := reportEdits(snap, np, reply)
	// own is rebuilt in the map of the push before last (w.spare).
	own := w.spare
	if own == nil {
		own = make(map[string]vda.Status, len(w.own))
	}
	clear(own)
	var todo []statusEdit
	var mine []vda.Status
	grouped := groupEdits(edits)
	var twice map[string]bool // keys with edits under two guards: never skipped nor recorded
	seen := make(map[string]bool, len(grouped))
	for _, e := range grouped {
		if seen[e.specKey] {
			if twice == nil {
				twice = map[string]bool{}
			}
			twice[e.specKey] = true
		}
		seen[e.specKey] = true
	}
	for _, e := range grouped {
		if prev, ok := w.own[e.specKey]; !all && ok && !twice[e.specKey] && e.is(prev) && e.unchanged(snap.Statuses[e.specKey]) {
			own[e.specKey] = prev
			continue
		}
		var part vda.Status
		e.apply(&part)
		todo, mine = append(todo, e), append(mine, part)
	}
	w.statusMu.Lock()
	defer w.statusMu.Unlock()
	dropped, err := w.m.writeAll(w.ctx, todo)
	w.stale = len(dropped) > 0
	if err == nil {
		for i, e := range todo {
			if !twice[e.specKey] && !dropped[e.specKey] {
				own[e.specKey] = mine[i]
			}
		}
	} // else: written again next time; so are the dropped ones
	w.own, w.spare = own, w.own
	if err != nil && w.ctx.Err() == nil {
		w.log.Warn("status write-back failed", "error", err)
	}
	if err := w.m.markInitialized(w.ctx, snap, initialized); err != nil && w.ctx.Err() == nil {
		w.log.Warn("cannot mark disk arrays initialized", "error", err)
	}
}

// sameStatus is statusEqual, epochs included.
func sameStatus(a, b vda.Status) bool { return statusEqual(a, b) && epochsEqual(a, b) }

// epochsEqual compares the epochs of a and b and of their parts, which
// statusEqual leaves out: the snapshot's status may hold a part as
// reported at an older epoch (writeStatus normalizes those as it writes).
func epochsEqual(a, b vda.Status) bool {
	if a.Epoch != b.Epoch {
		return false
	}
	for id, pa := range a.Parts {
		if pb, ok := b.Parts[id]; ok && !epochsEqual(pa, pb) {
			return false
		}
	}
	return true
}

// setSyncError records the last sync error in the node's status.
func (w *worker) setSyncError(msg string) {
	w.mu.Lock()
	same := w.syncErr == msg
	w.syncErr = msg
	w.mu.Unlock()
	if same {
		return
	}
	w.statusMu.Lock()
	defer w.statusMu.Unlock()
	err := w.m.writeStatus(w.ctx, statusEdit{specKey: w.key, edit: func(st *vda.Status) { st.ErrorMsg = msg }})
	if err != nil && !errors.Is(err, errSpecChanged) && w.ctx.Err() == nil {
		w.log.Debug("cannot write node status", "error", err)
	}
}

// probe checks the node's health every Failover.Interval through the
// failover engine (failover.Engine.ProbeNode: a late answer counts, a scout
// sees a refusal the late probe cannot), with the worker as its Prober.
func (w *worker) probe() { w.m.engine.ProbeNode(w.ctx, w.id, w) }

var (
	_ failover.BusyProber    = (*worker)(nil)
	_ failover.BreakNotifier = (*worker)(nil)
)

// Broken tells the engine when the connection to the agent breaks, when
// the Transport's connection can tell (BreakWatcher).
func (w *worker) Broken(ctx context.Context, _ string) <-chan struct{} {
	if b, ok := w.client.(BreakWatcher); ok {
		return b.Broken(ctx)
	}
	return nil
}

// Probe asks the node's agent for its health once (the engine's Prober).
func (w *worker) Probe(ctx context.Context, _ string) failover.Observation {
	reply, err := w.probeOnce(ctx)
	if err != nil {
		miss := missOf(err)
		w.m.cfg.Metrics.Probed(w.name, miss.String())
		return failover.Observation{Miss: miss, Err: err}
	}
	w.m.cfg.Metrics.Probed(w.name, "")
	return failover.Observation{OK: true, Instance: reply.GetInstanceId()}
}

// Busy: timeouts are no evidence while a young Sync is in flight (busy).
func (w *worker) Busy(string) bool { return w.busy() }

func (w *worker) probeOnce(ctx context.Context) (*agentpb.HealthReply, error) {
	reply, err := w.client.Health(ctx, &agentpb.HealthRequest{})
	if err == nil && reply.GetRole() != w.role.String() {
		err = fmt.Errorf("%w: %s answers as role %q", ErrAgent, w.name, reply.GetRole())
	}
	return reply, err
}

// busy reports whether a Sync to the node is in flight and younger than
// BusyGrace: timeouts then are not evidence (the node is busy with our own
// request; a refused or broken connection still is).
func (w *worker) busy() bool {
	since := w.syncSince.Load()
	return since != 0 && time.Since(time.Unix(0, since)) < w.m.cfg.BusyGrace
}

// missOf classifies a failed probe: no answer in time (the probe's deadline,
// or the agent saying its SPDK did not answer in time: DeadlineExceeded) is
// weak evidence; anything else (Unavailable from a refused, reset or closed
// connection or from an agent whose SPDK is gone, or any other error answer)
// is strong.
func missOf(err error) failover.Miss {
	if status.Code(err) == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
		return failover.Silent
	}
	return failover.Refused
}

// onTransition acts on a health change (the engine counted it): re-sync a
// node that restarted or came back, record healthy/failed, and let the
// control loop fail over.
func (w *worker) onTransition(tr failover.Transition, probeErr error) {
	if tr.Restarted || (tr.To == failover.Healthy && tr.From == failover.Failed) {
		w.log.Info("node is back, re-syncing", "restarted", tr.Restarted)
		w.forcePush()
	}
	var h vda.Health
	switch tr.To {
	case failover.Healthy:
		h = vda.HealthHealthy
	case failover.Failed:
		h = vda.HealthFailed
	default:
		return
	}
	w.mu.Lock()
	changed := w.health != h
	w.health = h
	w.mu.Unlock()
	if !changed {
		return
	}
	msg := ""
	if h == vda.HealthFailed {
		evidence := "refused"
		if tr.Cause == failover.Silent {
			evidence = fmt.Sprintf("silent for %.1fs", tr.Silence.Seconds())
		}
		w.log.Info("node failed", "evidence", evidence, "error", probeErr)
		msg = fmt.Sprintf("health probes %s: %v", evidence, probeErr)
	}
	after := w.m.rounds.Load() // the failover is decided in a later round
	if h == vda.HealthFailed {
		w.m.requestFailoverRound()
	} else {
		w.m.requestRound()
	}
	w.m.goAsync(func() { w.m.writeNodeHealth(w, h, msg, after) })
}

// signal is a counted broadcast: every signal closes the channel that wait
// returned before it. The zero value is ready to use.
type signal struct {
	mu  sync.Mutex
	ch  chan struct{}
	gen int64 // signals so far
}

// wait returns the channel the next signal closes and the signals so far.
func (s *signal) wait() (<-chan struct{}, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch, s.gen
}

func (s *signal) signal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// delivered is a request less its generation and store revision: what a
// node was sent, to tell whether a newer plan changes anything for it.
type delivered struct {
	nodeID, nodeName, agentID string
	state                     proto.Message // the request's DnState or CnState: never modified once planned
}

func deliveredOf(req *agentpb.SyncRequest) *delivered {
	d := &delivered{nodeID: req.GetNodeId(), nodeName: req.GetNodeName(), agentID: req.GetAgentId()}
	if dn := req.GetDn(); dn != nil {
		d.state = dn
	} else if cn := req.GetCn(); cn != nil {
		d.state = cn
	}
	return d
}

// same reports whether d and o are the same state for the same node and
// agent. A state the planner reused is the same pointer: only a rebuilt
// one is compared field by field.
func (d *delivered) same(o *delivered) bool {
	if o == nil || d.nodeID != o.nodeID || d.nodeName != o.nodeName || d.agentID != o.agentID {
		return false
	}
	if d.state == o.state {
		return true
	}
	if d.state == nil || o.state == nil {
		return false
	}
	return proto.Equal(d.state, o.state)
}
