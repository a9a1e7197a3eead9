package monitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/store"
)

// Monitor drives the nodes it owns: it pushes each one its desired state,
// writes the reported status back, probes their health and fails over the
// disk arrays whose primary was on a failed controller node.
type Monitor struct {
	cfg       Config
	log       hclog.Logger
	members   *Membership
	transport Transport // Config.Transport, or GRPC with Config.TLS

	round chan struct{} // cap 1: take a new snapshot and dispatch it
	// failed (cap 1) asks for a round because a node failed: it is not
	// held back by RoundInterval (its failover's pushes wait for it).
	failed chan struct{}
	// snaps is the store as of its last change; it requests a round when
	// a spec changes.
	snaps *SnapshotCache
	// written holds this monitor's recent status writes (see assume).
	written writtenStatuses
	// committed is the revision of the last failover committed: the round
	// that committed it plans from a snapshot that has it.
	committed atomic.Int64
	rounds    atomic.Int64 // rounds run (taken a snapshot)
	// engine judges the owned nodes' health (the workers probe them
	// through it) and fails over, over members and the store (actuator).
	engine *failover.Engine
	// progress is signalled by every push that applied new state (see
	// worker.waitProgress).
	progress signal
	// pushes says when the failovers' pushes are done (failover phases in
	// flight, rounds dispatched): the statuses a failed controller node
	// leaves behind are written after them.
	pushes failoverPushes
	// planner plans each round, rebuilding only the nodes whose inputs
	// changed (control loop only).
	planner Planner

	mu       sync.Mutex
	workers  map[string]*worker // by node ID
	snap     *Snapshot          // last dispatched
	problems string             // last logged, to log changes only

	async sync.WaitGroup // status writes and failover phases

	emptyMu                 sync.Mutex
	emptySince, emptyWarned time.Time // warnEmpty's
}

// New validates cfg and returns a Monitor; Run starts it.
func New(cfg Config) (*Monitor, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: no store", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.Named("monitor").With("monitor", cfg.ID)
	members, err := NewMembership(cfg.Store, MembershipConfig{ID: cfg.ID, TTL: cfg.LeaseTTL, Logger: log, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	m := &Monitor{cfg: cfg, log: log, members: members, round: make(chan struct{}, 1), failed: make(chan struct{}, 1), workers: map[string]*worker{}}
	m.snaps = NewSnapshotCache(cfg.Store, SnapshotCacheConfig{BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax, Logger: log,
		OnChange: func(specs bool) {
			if specs { // not on statuses or members: the loop's own writes must not wake it
				m.requestRound()
			}
		}})
	m.engine, err = failover.NewEngine(failover.EngineConfig{Health: cfg.Failover, ProbeTimeout: cfg.HealthTimeout,
		Leadership: members, Actuator: storeActuator{m}, Now: cfg.Now, MaxBatch: store.MaxTxnOps - 1, // one condition guards the member key
		OnTransition: m.onTransition, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if m.transport, err = cfg.agentTransport(log); err != nil {
		return nil, err
	}
	return m, nil
}

// Membership returns the monitor's store membership (which nodes it owns).
func (m *Monitor) Membership() *Membership { return m.members }

// Live reports whether this monitor is certainly a live member.
func (m *Monitor) Live() bool { return len(m.members.Members()) > 0 }

// Run drives the owned nodes until ctx ends. It returns ctx's error, after
// every goroutine it started has exited.
func (m *Monitor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.log.Info("starting")
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = m.members.Run(ctx) }()
	go func() { defer wg.Done(); _ = m.snaps.Run(ctx) }()
	m.control(ctx)
	cancel()
	m.mu.Lock()
	workers := m.workers
	m.workers = map[string]*worker{}
	m.mu.Unlock()
	for _, w := range workers {
		w.stop()
	}
	wg.Wait()
	m.async.Wait()
	m.log.Info("stopped")
	return ctx.Err()
}

// requestRound asks the control loop for a new snapshot.
func (m *Monitor) requestRound() {
	select {
	case m.round <- struct{}{}:
	default:
	}
}

// requestFailoverRound asks for a round now, without the pacing of
// RoundInterval: a node failed.
func (m *Monitor) requestFailoverRound() { poke(m.failed) }

// pace waits d before the next round, or until ctx ends or a node fails.
func (m *Monitor) pace(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-m.failed:
	}
}

// goAsync runs fn in a goroutine that Run waits for.
func (m *Monitor) goAsync(fn func()) {
	m.async.Add(1)
	go func() { defer m.async.Done(); fn() }()
}

// control is the one loop that snapshots the store, runs failovers and
// dispatches plans, on store changes, membership changes, health events
// and the periodic resync.
func (m *Monitor) control(ctx context.Context) {
	resync := time.NewTicker(m.cfg.ResyncInterval)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	// held wakes the loop when a node that failover waits for (its
	// hold-down) becomes eligible.
	held := time.NewTimer(time.Hour)
	held.Stop()
	defer held.Stop()
	force, backoff := true, time.Duration(0)
	for {
		changed := m.members.Changed()
		started := time.Now()
		wake, err := m.runRound(ctx, force)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = nextBackoff(backoff, m.cfg.BackoffMin, m.cfg.BackoffMax)
			m.log.Warn("round failed", "error", err, "retry_in", backoff)
			retry.Reset(backoff)
		} else {
			backoff, force = 0, false
		}
		if wake > 0 {
			held.Reset(wake)
		} else {
			held.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-m.failed:
			continue // at once
		case <-m.round:
		case <-changed:
		case <-retry.C:
		case <-held.C:
		case <-resync.C:
			force = true
		}
		if d := m.cfg.RoundInterval - time.Since(started); d > 0 {
			m.pace(ctx, d) // batch what changes meanwhile
		}
	}
}

// runRound takes a snapshot, fails over what needs it (then takes another),
// plans and dispatches. It returns when a failover that waits for a
// held-down node should be decided again (0: none waits).
func (m *Monitor) runRound(ctx context.Context, force bool) (time.Duration, error) {
	snap, err := m.snaps.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	round := m.rounds.Add(1)
	res, err := m.engine.Failover(ctx, viewOf(snap))
	if err != nil {
		m.log.Warn("failover incomplete", "error", err)
		m.requestRound()
	}
	started := time.Now()
	if res.Moved > 0 {
		if snap, err = m.snaps.AtLeast(ctx, m.committed.Load()); err != nil {
			return res.Wake, err
		}
	}
	caught := time.Now()
	plan := m.planner.Build(snap)
	planned := time.Now()
	m.logProblems(plan)
	m.dispatch(ctx, snap, plan, force)
	m.pushes.dispatched(round)
	if res.Moved > 0 {
		// Where a failover's time goes between its commit and its pushes.
		m.log.Debug("failover dispatched", "das", res.Moved, "revision", snap.Revision,
			"snapshot_wait", caught.Sub(started), "plan", planned.Sub(caught), "dispatch", time.Since(planned))
	}
	m.observeCluster(snap)
	return res.Wake, nil
}

func (m *Monitor) logProblems(plan *Plan) {
	msgs := make([]string, 0, len(plan.Problems))
	for _, p := range plan.Problems {
		msgs = append(msgs, p.Error())
	}
	all := strings.Join(msgs, "\n")
	m.mu.Lock()
	defer m.mu.Unlock()
	if all == m.problems {
		return
	}
	m.problems = all
	for _, p := range plan.Problems {
		m.log.Warn("malformed object", "key", p.Key, "error", p.Err)
	}
}

// dispatch hands every owned node its plan, starting and stopping workers
// as ownership changes. When DAs changed primary since the last snapshot,
// their controller nodes are held while their disk nodes are pushed first
// (the fence), then the new primaries, then the other controllers.
func (m *Monitor) dispatch(ctx context.Context, snap *Snapshot, plan *Plan, force bool) {
	var released []*worker
	defer func() {
		// Stopped outside m.mu: a stopping worker may wait for its status
		// writes, which read m.snap.
		for _, w := range released {
			w.stop()
		}
	}()
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.snap
	m.snap = snap
	for id, w := range m.workers {
		if np, ok := plan.Nodes[id]; !ok || np.Name != w.name || np.Address != w.addr || !m.members.Owns(id) {
			m.log.Info("node released", "node", w.name)
			w.cancel()
			released = append(released, w)
			delete(m.workers, id)
			m.engine.Forget(id)
		}
	}
	for id, np := range plan.Nodes {
		if _, ok := m.workers[id]; ok || !m.members.Owns(id) {
			continue
		}
		w, err := m.newWorker(ctx, np)
		if err != nil {
			m.log.Error("cannot drive node", "node", np.Name, "error", err)
			continue
		}
		m.log.Info("node acquired", "node", np.Name, "role", np.Role.String())
		m.workers[id] = w
	}
	ph := m.fencePhases(prev, snap)
	for _, w := range ph.held() {
		w.hold()
	}
	inPhase := ph.members()
	for id, w := range m.workers {
		w.offer(plan.Nodes[id], snap, force, inPhase[w])
	}
	if !ph.empty() {
		m.pushes.phaseStarted()
		m.goAsync(func() {
			defer m.pushes.phaseDone()
			m.runPhases(ctx, ph, snap.Revision)
		})
	}
}

// nextBackoff doubles d within [lo, hi].
func nextBackoff(d, lo, hi time.Duration) time.Duration {
	return min(max(2*d, lo), hi)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Stats counts what the monitor's failure detection and failover did since
// New (nodes and disk arrays this monitor owned at the time).
type Stats struct {
	// NodesFailedRefused counts node failures on strong evidence:
	// failover.Config.MissThreshold probes refused within the window (the
	// agent's connection refused, reset or closed, its SPDK gone).
	NodesFailedRefused int
	// NodesFailedSilent counts node failures on weak evidence: no good
	// answer for failover.Config.SlowTimeout (probes timed out, or the
	// agent's SPDK did not answer in time).
	NodesFailedSilent int
	// Failovers counts the disk arrays whose primary was moved off a failed
	// controller node (each committed move once).
	Failovers int
	// LastFailover is when the last of them was committed (Config.Now);
	// zero if none.
	LastFailover time.Time
	// Waiting is how many disk arrays need a failover but wait, as of the
	// last round, because their only candidates are held down.
	Waiting int
	// HeldDown lists the owned nodes, by name, that failed and have not yet
	// been healthy for failover.Config.HoldDown, sorted.
	HeldDown []string
}

// Stats returns the monitor's failure and failover counts.
func (m *Monitor) Stats() Stats {
	es := m.engine.Stats()
	st := Stats{NodesFailedRefused: es.NodesFailedRefused, NodesFailedSilent: es.NodesFailedSilent,
		Failovers: es.Failovers, LastFailover: es.LastFailover, Waiting: es.Waiting}
	m.mu.Lock()
	names := map[string]string{}
	for id, w := range m.workers {
		names[id] = w.name
	}
	m.mu.Unlock()
	for id, name := range names {
		if m.engine.HoldDown(id) > 0 {
			st.HeldDown = append(st.HeldDown, name)
		}
	}
	slices.Sort(st.HeldDown)
	return st
}

// Engine returns the monitor's failover engine: its Events report node
// health transitions and failovers.
func (m *Monitor) Engine() *failover.Engine { return m.engine }

// healthOf returns the tracked state of an owned node.
func (m *Monitor) healthOf(id string) failover.State { return m.engine.State(id) }

// onTransition is the engine's hook: the node's worker acts on a health
// change of its node.
func (m *Monitor) onTransition(tr failover.Transition, o failover.Observation) {
	if tr.From != tr.To {
		m.cfg.Metrics.NodeTransition(tr.Node, tr.From, tr.To)
	}
	m.mu.Lock()
	w := m.workers[tr.Node]
	m.mu.Unlock()
	if w != nil {
		w.onTransition(tr, o.Err)
	}
}

// ErrAgent is wrapped by failed calls to an agent.
var ErrAgent = errors.New("monitor: agent call failed")
