package failover

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Observation is one probe's outcome: the node answered (OK, with the
// instance it runs) or it did not (Miss says how, Err why).
type Observation struct {
	OK       bool
	Miss     Miss
	Instance string
	Err      error
	// Asked is when the request this answers was sent, as [Engine.Asking]
	// marked it: a good answer to a request sent before the node's
	// connection last broke is no evidence (an agent that is stopping still
	// answers what it was asked: alive then, which says nothing of after).
	// The zero Asked is always evidence.
	Asked Asked
}

// Asked marks when a request to a node was sent, relative to the breaks
// of its connection the engine has heard of ([BreakNotifier]); see
// [Engine.Asking].
type Asked struct {
	breaks uint64
	known  bool
}

// Prober asks one node whether it is alive. Probe returns when the node
// answered or ctx ended (the engine's probe timeout, or the node was
// released); the engine judges a probe its timeout ended as [Silent]
// whatever Probe returns. Probes of one node may overlap (a late probe and
// a scout; see [Engine.ProbeNode]).
type Prober interface {
	Probe(ctx context.Context, node string) Observation
}

// BusyProber is a [Prober] that may excuse silence: while Busy(node) is
// true, a probe of node that times out is no evidence at all (a refusal
// still is), e.g. because the node is busy with a request of the
// embedder's own.
type BusyProber interface {
	Prober
	Busy(node string) bool
}

// BreakNotifier is a [Prober] that learns when its connection to a node
// breaks (closed or reset by the other end, as when the node's process
// dies or its host reboots). [Engine.ProbeNode] then probes at once and
// sends the next probes Health.Interval apart from there: the evidence a
// failure needs is the same, gathered from the break on rather than from
// the next tick of a schedule set before it, so a crash is judged
// Health.Interval sooner at worst.
type BreakNotifier interface {
	Prober
	// Broken returns a channel closed the next time the connection to
	// node breaks, or nil if it cannot tell. Work it starts ends with
	// ctx.
	Broken(ctx context.Context, node string) <-chan struct{}
}

// Fence is a proof of leadership at one moment, opaque to the engine: the
// [Leadership] makes it and the [Actuator] makes its commit conditional on
// it (a store key and its revision, a Kubernetes Lease's resourceVersion),
// so that a commit made by a deposed leader fails.
type Fence any

// Leadership says which nodes this engine instance may act on. An engine
// fails over only the arrays whose primary is on a node it owns, and
// commits only under a fence.
type Leadership interface {
	// Owns reports whether this instance owns node now.
	Owns(node string) bool
	// Fence returns a proof of the current leadership for the next commit;
	// it fails when this instance is not certainly a leader now.
	Fence(ctx context.Context) (Fence, error)
	// Changed returns a channel closed at the next change of what this
	// instance owns (nil: it never changes).
	Changed() <-chan struct{}
}

// Array is a disk array as the engine sees it.
type Array struct {
	ID, Name    string
	Epoch       uint64
	Controllers []Controller
	// Ref is the embedder's handle on the array (its stored object and
	// revision, say), handed back in [Move].
	Ref any
}

// NodeInfo describes a node of the cluster.
type NodeInfo struct {
	ID       string
	Location string // failure domain
	// Healthy is the node's health as recorded by whoever tracks it; it is
	// used for nodes this engine has no observation of (owned by another
	// instance).
	Healthy bool
	// Offline nodes take no primaries whatever their health.
	Offline bool
}

// View is the cluster state a round decides on.
type View struct {
	// Nodes are the nodes to track: [Engine.Run] probes those it owns.
	Nodes []NodeInfo
	// Arrays are decided in this order.
	Arrays []Array
}

// Move is one array's committed failover.
type Move struct {
	Array    Array
	Decision Decision
}

// ErrConflict is returned by [Actuator.Commit] when nothing was committed
// because an array changed since it was loaded: the engine reloads the
// arrays and decides them again.
var ErrConflict = errors.New("failover: commit conflict")

// Actuator reads the arrays and commits failovers. Commit is the whole
// failover: fencing the old primary and promoting the new one are edits of
// desired state that the embedder's push path executes.
type Actuator interface {
	// Load returns the current cluster state.
	Load(ctx context.Context) (*View, error)
	// Commit makes every move's new primary and epoch the array's, all or
	// nothing, conditional on the fence and on each array being unchanged
	// since it was loaded (otherwise [ErrConflict]).
	Commit(ctx context.Context, fence Fence, moves []Move) error
}

// Reporter is an optional interface of an [Actuator]: it is told, on the
// round's goroutine, of each array that cannot fail over now (err is a
// [*HeldDownError] or wraps [ErrNoHealthySecondary]), once per distinct
// condition.
type Reporter interface {
	Blocked(ctx context.Context, a Array, err error)
}

// EngineConfig configures an [Engine]. Zero values mean the documented
// defaults.
type EngineConfig struct {
	// Health says when a node is failed and how long it is held down;
	// zero means DefaultConfig().
	Health Config
	// ProbeTimeout bounds one probe; 0 means Health.SlowTimeout/2. It must
	// not exceed Health.SlowTimeout.
	ProbeTimeout time.Duration
	// Prober probes the owned nodes in Run. Embedders that run
	// [Engine.ProbeNode] themselves may leave it nil.
	Prober Prober
	// Leadership and Actuator are required.
	Leadership Leadership
	Actuator   Actuator
	// Clock times probes, timeouts and retries; nil means SystemClock().
	Clock Clock
	// Now stamps observations and judges hold-downs; nil means Clock.Now.
	Now func() time.Time
	// ResyncInterval: Run decides again at least this often; 0 means 30 s.
	ResyncInterval time.Duration
	// BackoffMin and BackoffMax bound Run's retries after a failed round;
	// 0 means 100 ms and 5 s.
	BackoffMin, BackoffMax time.Duration
	// MaxBatch bounds the arrays committed together; 0 means no bound.
	MaxBatch int
	// EventBuffer is how many events Events keeps unread; 0 means 256.
	EventBuffer int
	// OnTransition, when set, is called synchronously on the goroutine that
	// observed a node's health change (Transition.Changed), with the
	// observation that caused it. It must not block for long.
	OnTransition func(Transition, Observation)
	// Logger receives lifecycle logs; nil means silent.
	Logger hclog.Logger
}

// commitAttempts bounds the re-reads of one batch on conflicts.
const commitAttempts = 10

// ErrEngineConfig is wrapped by NewEngine's errors.
var ErrEngineConfig = errors.New("failover: invalid engine config")

// Engine detects failed nodes and fails over the disk arrays whose primary
// is on one, over a [Prober], a [Leadership] and an [Actuator]. It is safe
// for concurrent use.
type Engine struct {
	cfg   EngineConfig
	clock Clock
	now   func() time.Time
	log   hclog.Logger
	kick  chan struct{} // cap 1: Run decides again

	mu      sync.Mutex
	tracker *Tracker
	stats   EngineStats
	blocked map[string]string // array ID -> condition last reported
	breaks  map[string]uint64 // node -> connection breaks heard of

	emitMu  sync.Mutex
	events  chan Event
	dropped atomic.Uint64
}

// EngineStats counts what an engine detected and did since it was made.
type EngineStats struct {
	// NodesFailedRefused and NodesFailedSilent count node failures on
	// strong (refused) and weak (silent) evidence.
	NodesFailedRefused, NodesFailedSilent int
	// Failovers counts the arrays moved off a failed node.
	Failovers int
	// LastFailover is when the last of them was committed (Now).
	LastFailover time.Time
	// Waiting is how many arrays waited for a held-down node in the last
	// round.
	Waiting int
	// EventsDropped counts events dropped because nobody read them.
	EventsDropped uint64
}

// NewEngine validates cfg and returns an Engine.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.Health == (Config{}) {
		cfg.Health = DefaultConfig()
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = cfg.Health.SlowTimeout / 2
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	if cfg.Now == nil {
		cfg.Now = cfg.Clock.Now
	}
	if cfg.ResyncInterval == 0 {
		cfg.ResyncInterval = 30 * time.Second
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = 100 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 5 * time.Second
	}
	if cfg.EventBuffer == 0 {
		cfg.EventBuffer = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	var errs []error
	if cfg.Leadership == nil || cfg.Actuator == nil {
		errs = append(errs, errors.New("a Leadership and an Actuator are required"))
	}
	if cfg.ProbeTimeout < 0 || cfg.ProbeTimeout > cfg.Health.SlowTimeout {
		errs = append(errs, fmt.Errorf("probe timeout %v must be positive and at most the slow timeout %v",
			cfg.ProbeTimeout, cfg.Health.SlowTimeout))
	}
	if cfg.ResyncInterval < 0 || cfg.BackoffMin < 0 || cfg.BackoffMax < cfg.BackoffMin {
		errs = append(errs, fmt.Errorf("resync interval %v and backoff %v-%v must be positive and ordered",
			cfg.ResyncInterval, cfg.BackoffMin, cfg.BackoffMax))
	}
	if cfg.MaxBatch < 0 || cfg.EventBuffer < 0 {
		errs = append(errs, fmt.Errorf("max batch %d and event buffer %d must not be negative", cfg.MaxBatch, cfg.EventBuffer))
	}
	tracker, err := NewTracker(cfg.Health)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEngineConfig, err)
	}
	return &Engine{cfg: cfg, clock: cfg.Clock, now: cfg.Now, log: cfg.Logger, kick: make(chan struct{}, 1),
		tracker: tracker, blocked: map[string]string{}, breaks: map[string]uint64{}, events: make(chan Event, cfg.EventBuffer)}, nil
}

// Kick asks Run for a round now (e.g. after a change of the arrays).
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// State returns node's tracked health (Unknown if never observed).
func (e *Engine) State(node string) State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tracker.State(node)
}

// HoldDown returns how much longer node is held down ([Tracker.HoldDown]).
func (e *Engine) HoldDown(node string) time.Duration {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.tracker.HoldDown(node, now)
}

// Forget drops node's health (it was released or deleted).
func (e *Engine) Forget(node string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tracker.Forget(node)
}

// Stats returns the engine's counts.
func (e *Engine) Stats() EngineStats {
	e.mu.Lock()
	st := e.stats
	e.mu.Unlock()
	st.EventsDropped = e.dropped.Load()
	return st
}

// Result is what one round did.
type Result struct {
	// Moved is how many arrays were failed over.
	Moved int
	// Wake, when positive, is when arrays waiting for a held-down node
	// should be decided again.
	Wake time.Duration
}

// Failover runs one round on v: it moves the primary of every array whose
// primary is on a node this instance owns and judges failed. It is
// level-triggered (a round that did not commit is redone by the next), and
// commits batches of EngineConfig.MaxBatch arrays, each under a fence.
func (e *Engine) Failover(ctx context.Context, v *View) (Result, error) {
	failed := map[string]bool{}
	for _, n := range v.Nodes {
		if e.cfg.Leadership.Owns(n.ID) && e.State(n.ID) == Failed {
			failed[n.ID] = true
		}
	}
	var todo []Array
	for _, a := range v.Arrays {
		if p, err := primaryOf(a.Controllers); err == nil && failed[p.CNID] {
			todo = append(todo, a)
		}
	}
	e.forgetBlocked(todo)
	if len(todo) == 0 {
		e.setWaiting(0)
		return Result{}, nil
	}
	fence, err := e.cfg.Leadership.Fence(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("failover: no leadership to commit under: %w", err)
	}
	nodes := e.nodes(v)
	var res Result
	held := map[string]time.Duration{}
	var errs []error
	for len(todo) > 0 {
		n := len(todo)
		if e.cfg.MaxBatch > 0 {
			n = min(n, e.cfg.MaxBatch)
		}
		k, err := e.commitBatch(ctx, todo[:n], nodes, fence, held)
		res.Moved += k
		errs = append(errs, err)
		todo = todo[n:]
	}
	e.setWaiting(len(held))
	for _, d := range held {
		if res.Wake == 0 || d < res.Wake {
			res.Wake = d
		}
	}
	return res, errors.Join(errs...)
}

// nodes describes v's nodes for ChoosePrimary: healthy as tracked here or
// as recorded, and not offline; loaded with the primaries they serve; held
// down if they failed recently (known for tracked nodes only).
func (e *Engine) nodes(v *View) map[string]Node {
	out := make(map[string]Node, len(v.Nodes))
	now := e.now()
	e.mu.Lock()
	for _, n := range v.Nodes {
		healthy := n.Healthy
		if st := e.tracker.State(n.ID); st != Unknown {
			healthy = st == Healthy
		}
		cause, failed := e.tracker.FailedBy(n.ID)
		out[n.ID] = Node{ID: n.ID, Location: n.Location, Healthy: healthy && !n.Offline,
			HoldDown: e.tracker.HoldDown(n.ID, now), Dead: failed && cause == Refused}
	}
	e.mu.Unlock()
	for _, a := range v.Arrays {
		if p, err := primaryOf(a.Controllers); err == nil {
			n := out[p.CNID]
			n.Load++
			out[p.CNID] = n
		}
	}
	return out
}

// commitBatch decides and commits one batch, reloading it on a conflict.
// nodes' loads are updated with what it commits; the arrays that wait for a
// held-down node are added to held. It returns how many arrays it moved.
func (e *Engine) commitBatch(ctx context.Context, batch []Array, nodes map[string]Node, fence Fence,
	held map[string]time.Duration) (int, error) {
	for attempt := 0; attempt < commitAttempts; attempt++ {
		cur := maps.Clone(nodes) // loads as this attempt commits them
		var moves []Move
		for _, a := range batch {
			if p, _ := primaryOf(a.Controllers); !e.cfg.Leadership.Owns(p.CNID) {
				continue // no longer ours to fail over
			}
			d, err := ChoosePrimary(a.Controllers, cur, a.Epoch)
			if err != nil {
				var hd *HeldDownError
				if errors.As(err, &hd) {
					held[a.ID] = hd.Wait
				}
				e.block(ctx, a, err)
				continue
			}
			moves = append(moves, Move{Array: a, Decision: d})
			for id, delta := range map[string]int{d.NewPrimary.CNID: 1, d.OldPrimary.CNID: -1} {
				n := cur[id]
				n.Load += delta
				cur[id] = n
			}
		}
		if len(moves) == 0 {
			return 0, nil
		}
		err := e.cfg.Actuator.Commit(ctx, fence, moves)
		if err == nil {
			maps.Copy(nodes, cur)
			e.committed(moves)
			return len(moves), nil
		}
		if !errors.Is(err, ErrConflict) {
			return 0, fmt.Errorf("failover: commit: %w", err)
		}
		e.log.Debug("failover commit conflicted, reloading", "arrays", len(batch))
		if batch, err = e.reload(ctx, batch, nodes); err != nil || len(batch) == 0 {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%w: failover batch kept conflicting", ErrConflict)
}

// reload loads the cluster again and returns the batch's arrays whose
// primary is still on a failed node; nodes are described anew.
func (e *Engine) reload(ctx context.Context, batch []Array, nodes map[string]Node) ([]Array, error) {
	v, err := e.cfg.Actuator.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("failover: reload: %w", err)
	}
	want := make(map[string]bool, len(batch))
	for _, a := range batch {
		want[a.ID] = true
	}
	var out []Array
	for _, a := range v.Arrays {
		if p, err := primaryOf(a.Controllers); err == nil && want[a.ID] && e.State(p.CNID) == Failed {
			out = append(out, a)
		}
	}
	clear(nodes)
	maps.Copy(nodes, e.nodes(v))
	return out, nil
}

func (e *Engine) committed(moves []Move) {
	now := e.now()
	e.mu.Lock()
	e.stats.Failovers += len(moves)
	e.stats.LastFailover = now
	e.mu.Unlock()
	e.log.Info("primaries moved", "count", len(moves))
	for _, m := range moves {
		e.log.Debug("primary moved", "array", m.Array.Name, "from", m.Decision.OldPrimary.Idx,
			"to", m.Decision.NewPrimary.Idx, "epoch", m.Decision.Epoch)
		e.emit(Event{Kind: ArrayFailedOver, At: now, Node: m.Decision.OldPrimary.CNID, ArrayID: m.Array.ID,
			ArrayName: m.Array.Name, Decision: m.Decision})
	}
}

// block reports an array that cannot fail over now, once per distinct
// condition.
func (e *Engine) block(ctx context.Context, a Array, err error) {
	e.mu.Lock()
	same := e.blocked[a.ID] == err.Error()
	e.blocked[a.ID] = err.Error()
	e.mu.Unlock()
	if same {
		return
	}
	p, _ := primaryOf(a.Controllers)
	ev := Event{Kind: ArrayStuck, At: e.now(), Node: p.CNID, ArrayID: a.ID, ArrayName: a.Name, Err: err}
	if errors.Is(err, ErrHeldDown) {
		ev.Kind = ArrayWaiting
		e.log.Info("failover waits for a held-down node", "array", a.Name, "error", err)
	} else {
		e.log.Warn("cannot fail over", "array", a.Name, "error", err)
	}
	e.emit(ev)
	if r, ok := e.cfg.Actuator.(Reporter); ok {
		r.Blocked(ctx, a, err)
	}
}

// forgetBlocked drops the reported conditions of arrays that no longer
// need a failover, so that a later one is reported again.
func (e *Engine) forgetBlocked(todo []Array) {
	still := make(map[string]bool, len(todo))
	for _, a := range todo {
		still[a.ID] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range e.blocked {
		if !still[id] {
			delete(e.blocked, id)
		}
	}
}

func (e *Engine) setWaiting(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.Waiting = n
}
