package failover

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// The engine's tests run in a synctest bubble for one thing only: to know
// when every goroutine has reacted (synctest.Wait). Time is the fake
// clock's, advanced by the test one timer at a time, so every observation
// has an exact timestamp.

// fakeClock is a Clock whose time moves only in advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	at     time.Time
	active bool
	listed bool // in c.timers
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	select {
	case <-t.ch:
	default:
	}
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at, t.active = t.c.now.Add(d), true
	if !t.listed {
		t.listed = true
		t.c.timers = append(t.c.timers, t)
	}
	select {
	case <-t.ch:
	default:
	}
	return was
}

// fireNext fires the earliest timer due by until (moving the clock to it)
// and reports whether there was one.
func (c *fakeClock) fireNext(until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next *fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.active {
			t.listed = false // stopped or fired: Reset lists it again
			continue
		}
		keep = append(keep, t)
		if t.active && !t.at.After(until) && (next == nil || t.at.Before(next.at)) {
			next = t
		}
	}
	c.timers = keep
	if next == nil {
		return false
	}
	c.now, next.active = next.at, false
	next.ch <- next.at
	return true
}

// advance moves the clock by d, firing every timer due on the way in order
// and letting the bubble react to each.
func (c *fakeClock) advance(d time.Duration) {
	until := c.Now().Add(d)
	synctest.Wait()
	for c.fireNext(until) {
		synctest.Wait()
	}
	c.mu.Lock()
	c.now = until
	c.mu.Unlock()
	synctest.Wait()
}

// behaviour is how a fake node answers probes.
type behaviour struct {
	refuse bool
	hang   bool          // never answers (the probe's timeout ends it)
	delay  time.Duration // answers OK after this long
}

type fakeProber struct {
	clock *fakeClock
	mu    sync.Mutex
	nodes map[string]behaviour
	calls map[string]int
}

func newFakeProber(c *fakeClock) *fakeProber {
	return &fakeProber{clock: c, nodes: map[string]behaviour{}, calls: map[string]int{}}
}

func (p *fakeProber) set(node string, b behaviour) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nodes[node] = b
}

func (p *fakeProber) Probe(ctx context.Context, node string) Observation {
	p.mu.Lock()
	b := p.nodes[node]
	p.calls[node]++
	p.mu.Unlock()
	switch {
	case b.refuse:
		return Observation{Miss: Refused, Err: errors.New("connection refused")}
	case b.hang:
		<-ctx.Done()
		return Observation{Miss: Refused, Err: ctx.Err()} // the engine knows a timeout from a refusal
	case b.delay > 0:
		t := p.clock.NewTimer(b.delay)
		defer t.Stop()
		select {
		case <-t.C():
		case <-ctx.Done():
			return Observation{Miss: Refused, Err: ctx.Err()}
		}
	}
	return Observation{OK: true, Instance: node + "-1"}
}

// fakeLeadership owns every node until lose; a fence is its generation.
type fakeLeadership struct {
	mu      sync.Mutex
	gen     int
	lost    bool
	changed chan struct{}
}

func newFakeLeadership() *fakeLeadership { return &fakeLeadership{changed: make(chan struct{})} }

func (l *fakeLeadership) Owns(string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.lost
}

func (l *fakeLeadership) Fence(context.Context) (Fence, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return nil, errors.New("not the leader")
	}
	return l.gen, nil
}

func (l *fakeLeadership) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *fakeLeadership) lose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	l.lost = true
	close(l.changed)
	l.changed = make(chan struct{})
}

var errFenced = errors.New("fake: fence is stale")

// fakeActuator keeps arrays with a version each; a commit is conditional on
// the fence and the versions, like a store transaction.
type fakeActuator struct {
	lead  *fakeLeadership
	mu    sync.Mutex
	nodes []NodeInfo
	arrs  []Array // Ref is the version
	// beforeCommit runs at the start of each Commit (attempt n from 1).
	beforeCommit func(n int)
	commits      int
	moves        []Move
	blocked      []string
}

func (a *fakeActuator) Load(context.Context) (*View, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v := &View{Nodes: slices.Clone(a.nodes)}
	for _, x := range a.arrs {
		x.Controllers = slices.Clone(x.Controllers)
		v.Arrays = append(v.Arrays, x)
	}
	return v, nil
}

func (a *fakeActuator) Commit(_ context.Context, fence Fence, moves []Move) error {
	a.mu.Lock()
	a.commits++
	n, hook := a.commits, a.beforeCommit
	a.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	a.lead.mu.Lock()
	stale := fence != a.lead.gen
	a.lead.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	if stale {
		return errFenced
	}
	for _, m := range moves {
		if i := a.index(m.Array.ID); i < 0 || a.arrs[i].Ref != m.Array.Ref {
			return ErrConflict
		}
	}
	for _, m := range moves {
		i := a.index(m.Array.ID)
		a.arrs[i].Controllers = m.Decision.Apply(a.arrs[i].Controllers)
		a.arrs[i].Epoch = m.Decision.Epoch
		a.arrs[i].Ref = a.arrs[i].Ref.(int) + 1
	}
	a.moves = append(a.moves, moves...)
	return nil
}

func (a *fakeActuator) Blocked(_ context.Context, x Array, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.blocked = append(a.blocked, x.Name+": "+err.Error())
}

func (a *fakeActuator) index(id string) int {
	return slices.IndexFunc(a.arrs, func(x Array) bool { return x.ID == id })
}

func (a *fakeActuator) array(id string) Array {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.arrs[a.index(id)]
}

// bump changes an array behind the engine's back (a conflicting write).
func (a *fakeActuator) bump(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := a.index(id)
	a.arrs[i].Ref = a.arrs[i].Ref.(int) + 1
}

// rig is an engine over fakes: nodes cn0..cn2, array da0 with its primary
// on cn0 and secondaries on cn1 and cn2 (epoch 1).
type rig struct {
	clock  *fakeClock
	prober *fakeProber
	lead   *fakeLeadership
	act    *fakeActuator
	e      *Engine
}

var testHealth = Config{Interval: 100 * time.Millisecond, MissThreshold: 3, Window: time.Second,
	SlowTimeout: 2 * time.Second, HoldDown: 5 * time.Second}

func newRig(t *testing.T, mutate func(*EngineConfig)) *rig {
	r := &rig{clock: newFakeClock(), lead: newFakeLeadership()}
	r.prober = newFakeProber(r.clock)
	r.act = &fakeActuator{lead: r.lead, arrs: []Array{{ID: "id-da0", Name: "da0", Epoch: 1, Ref: 0,
		Controllers: []Controller{{ID: "c0", Idx: 0, CNID: "cn0", Primary: true}, {ID: "c1", Idx: 1, CNID: "cn1"},
			{ID: "c2", Idx: 2, CNID: "cn2"}}}}}
	for _, id := range []string{"cn0", "cn1", "cn2"} {
		r.act.nodes = append(r.act.nodes, NodeInfo{ID: id, Location: "r-" + id})
	}
	cfg := EngineConfig{Health: testHealth, ProbeTimeout: time.Second, Prober: r.prober, Leadership: r.lead,
		Actuator: r.act, Clock: r.clock, ResyncInterval: time.Hour}
	if mutate != nil {
		mutate(&cfg)
	}
	var err error
	r.e, err = NewEngine(cfg)
	require.NoError(t, err)
	return r
}

// run starts Run and stops it at the end of the test.
func (r *rig) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	synctest.Wait()
}

// drain returns the events queued so far.
func (r *rig) drain() []Event {
	var out []Event
	for {
		select {
		case ev := <-r.e.Events():
			out = append(out, ev)
		default:
			return out
		}
	}
}

func find(evs []Event, kind EventKind, node string) (Event, bool) {
	for _, ev := range evs {
		if ev.Kind == kind && (node == "" || ev.Node == node) {
			return ev, true
		}
	}
	return Event{}, false
}

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// A node whose probes are refused is failed at the MissThreshold-th
// refusal, and its arrays move at once, to the node in another failure
// domain with the least load, with epoch+1.
func TestEngineFailsRefusedNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		r.act.arrs[0].Controllers = r.act.arrs[0].Controllers[:2] // c0 on cn0, c1 on cn1
		r.run(t)
		r.clock.advance(150 * time.Millisecond)
		require.Equal(t, Healthy, r.e.State("cn0"))
		r.prober.set("cn0", behaviour{refuse: true})
		r.clock.advance(time.Second)

		evs := r.drain()
		failed, ok := find(evs, NodeFailed, "cn0")
		require.True(t, ok, "events: %v", evs)
		require.Equal(t, at(400), failed.At, "refused at 200, 300 and 400 ms")
		require.Equal(t, Refused, failed.Transition.Cause)
		moved, ok := find(evs, ArrayFailedOver, "cn0")
		require.True(t, ok)
		require.Equal(t, at(400), moved.At, "moved in the round the failure asked for")
		require.Equal(t, "da0", moved.ArrayName)
		require.Equal(t, "c1", moved.Decision.NewPrimary.ID)
		require.Equal(t, uint64(2), moved.Decision.Epoch)

		da := r.act.array("id-da0")
		require.Equal(t, uint64(2), da.Epoch)
		require.True(t, da.Controllers[1].Primary)
		require.False(t, da.Controllers[0].Primary)
		require.Len(t, r.act.moves, 1, "one failover, not one per round")
		st := r.e.Stats()
		require.Equal(t, 1, st.NodesFailedRefused)
		require.Equal(t, 1, st.Failovers)
		require.Equal(t, at(400), st.LastFailover)

		// Back: recovered and held down for HoldDown.
		r.prober.set("cn0", behaviour{})
		r.clock.advance(100 * time.Millisecond)
		back, ok := find(r.drain(), NodeRecovered, "cn0")
		require.True(t, ok)
		require.Equal(t, 5*time.Second, back.HoldDown)
		require.Len(t, r.act.moves, 1)
	})
}

// breakingProber is a fakeProber that is a BreakNotifier: breakConn
// closes the channel Broken gave for node.
type breakingProber struct {
	*fakeProber
	mu     sync.Mutex
	broken map[string]chan struct{}
}

func (p *breakingProber) Broken(_ context.Context, node string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch := make(chan struct{})
	p.broken[node] = ch
	return ch
}

func (p *fakeProber) callsOf(node string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[node]
}

// runBreakingRig runs a rig whose prober is a breakingProber, with da0's
// controllers on cn0 (primary) and cn1.
func runBreakingRig(t *testing.T) (*rig, *breakingProber) {
	var bp *breakingProber
	r := newRig(t, func(cfg *EngineConfig) {
		bp = &breakingProber{fakeProber: cfg.Prober.(*fakeProber), broken: map[string]chan struct{}{}}
		cfg.Prober = bp
	})
	r.act.arrs[0].Controllers = r.act.arrs[0].Controllers[:2]
	r.run(t)
	return r, bp
}

// requireFailedAt requires node's NodeFailed event among evs, at when.
func requireFailedAt(t *testing.T, evs []Event, node string, when time.Time, why string) {
	t.Helper()
	failed, ok := find(evs, NodeFailed, node)
	require.True(t, ok, "events: %v", evs)
	require.Equal(t, when, failed.At, why)
}

// refuseAndBreak makes node refuse every probe from now on and breaks its
// connection, as its process dying does.
func (p *breakingProber) refuseAndBreak(t *testing.T, node string) {
	t.Helper()
	p.set(node, behaviour{refuse: true})
	require.True(t, p.breakConn(node), "the engine listens for breaks of %s", node)
}

// breakConn reports whether the engine was waiting to hear of a break of
// node's connection.
func (p *breakingProber) breakConn(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.broken[node]
	if ok {
		close(ch)
		delete(p.broken, node)
	}
	return ok
}

// A node whose connection breaks (its process died) is probed at once,
// then every Interval from there: failed at the MissThreshold-th refusal
// as before, counted from the break, not from the next tick of the old
// schedule. A break of a node that answers is probed and nothing more.
func TestEngineProbesABrokenConnectionAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, bp := runBreakingRig(t)
		r.clock.advance(150 * time.Millisecond) // probes at 0 and 100 ms
		calls := bp.callsOf("cn1")
		require.True(t, bp.breakConn("cn1"), "the engine listens for breaks") // alive: the probe at once is answered
		synctest.Wait()
		require.Equal(t, calls+1, bp.callsOf("cn1"), "probed at the break")
		require.Equal(t, Healthy, r.e.State("cn1"))

		bp.refuseAndBreak(t, "cn0")
		r.clock.advance(time.Second)
		evs := r.drain()
		requireFailedAt(t, evs, "cn0", at(350), "refused at 150 (the break), 250 and 350 ms; on schedule 200, 300 and 400")
		moved, ok := find(evs, ArrayFailedOver, "cn0")
		require.True(t, ok)
		require.Equal(t, at(350), moved.At)
		_, ok = find(evs, NodeFailed, "cn1")
		require.False(t, ok, "a break alone is no evidence")
	})
}

// A probe sent before the connection broke and answered after it (an
// agent that is stopping answers what it was asked) proves nothing about
// after the break: the refusals from the break on fail the node as if it
// had not come.
func TestEngineBreakOutranksAnAnswerToAnEarlierProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, bp := runBreakingRig(t)
		bp.set("cn0", behaviour{delay: 50 * time.Millisecond})
		r.clock.advance(220 * time.Millisecond) // the probe sent at 200 ms answers at 250
		bp.refuseAndBreak(t, "cn0")
		r.clock.advance(time.Second)
		evs := r.drain()
		requireFailedAt(t, evs, "cn0", at(420), "refused at 220 (the break), 320 and 420 ms; the answer at 250 is no evidence")
		_, ok := find(evs, NodeRecovered, "cn0")
		require.False(t, ok, "events: %v", evs)
	})
}

// The embedder's own request (a push of desired state) asked before the
// connection broke and answered after it is no evidence either; one asked
// after the break is. That answer made a node whose process was stopping
// healthy again 5 ms after the break's refusal, and its failure came an
// Interval late (BenchmarkFailover in monitor: 1.2 s after the kill, not
// 0.8 s).
func TestEngineBreakOutranksAnEarlierRequestOfTheEmbedder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, bp := runBreakingRig(t)
		r.clock.advance(150 * time.Millisecond)
		before := r.e.Asking("cn0")
		bp.refuseAndBreak(t, "cn0")
		synctest.Wait()
		require.Equal(t, Suspect, r.e.State("cn0"), "refused at the break")
		tr := r.e.Observe("cn0", Observation{OK: true, Asked: before})
		require.False(t, tr.Changed(), "asked before the break: %+v", tr)
		require.Equal(t, Suspect, r.e.State("cn0"))
		r.clock.advance(time.Second)
		requireFailedAt(t, r.drain(), "cn0", at(350), "refused at 150 (the break), 250 and 350 ms")

		bp.refuseAndBreak(t, "cn1")
		synctest.Wait()
		require.Equal(t, Suspect, r.e.State("cn1"))
		after := r.e.Asking("cn1")
		require.True(t, r.e.Observe("cn1", Observation{OK: true, Asked: after}).Changed(), "asked after the break")
		require.Equal(t, Healthy, r.e.State("cn1"))
		require.True(t, r.e.Observe("cn1", Observation{Miss: Refused}).Changed())
		require.True(t, r.e.Observe("cn1", Observation{OK: true}).Changed(), "an answer of unknown age counts")
	})
}

// A node that answers every probe 700 ms late (seven probe intervals) is
// never failed: each late answer proves it alive. A node that hangs is
// failed on silence, once, SlowTimeout after its last answer.
func TestEngineSlowNodeNotFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		r.run(t)
		r.clock.advance(50 * time.Millisecond)
		r.prober.set("cn0", behaviour{delay: 700 * time.Millisecond})
		r.prober.set("cn2", behaviour{hang: true})
		r.clock.advance(10 * time.Second)

		evs := r.drain()
		_, failed := find(evs, NodeFailed, "cn0")
		require.False(t, failed, "the slow node was failed: %v", evs)
		require.Equal(t, Healthy, r.e.State("cn0"))
		require.Empty(t, r.act.moves)
		r.prober.mu.Lock()
		require.Greater(t, r.prober.calls["cn0"], 10, "probed all along")
		r.prober.mu.Unlock()

		hung, ok := find(evs, NodeFailed, "cn2")
		require.True(t, ok)
		require.Equal(t, Silent, hung.Transition.Cause)
		require.Equal(t, at(2000), hung.At, "2 s after its last answer, at 0 ms")
		st := r.e.Stats()
		require.Equal(t, 1, st.NodesFailedSilent)
		require.Zero(t, st.NodesFailedRefused)
		require.Zero(t, st.Failovers)
	})
}

// A node's failover is committed under the fence of the round that decided
// it: leadership lost meanwhile means nothing is committed, and nothing is
// tried again while this instance owns nothing.
func TestEngineLeadershipLostNoCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		r.act.beforeCommit = func(int) { r.lead.lose() }
		r.run(t)
		r.clock.advance(150 * time.Millisecond)
		r.prober.set("cn0", behaviour{refuse: true})
		r.clock.advance(10 * time.Second)

		_, failed := find(r.drain(), NodeFailed, "cn0")
		require.True(t, failed, "cn0 failed while owned")
		da := r.act.array("id-da0")
		require.Equal(t, uint64(1), da.Epoch, "nothing committed")
		require.True(t, da.Controllers[0].Primary)
		require.Empty(t, r.act.moves)
		r.act.mu.Lock()
		require.Equal(t, 1, r.act.commits, "one commit attempt, refused; none once nothing is owned")
		r.act.mu.Unlock()
		require.Zero(t, r.e.Stats().Failovers)
		for _, ev := range r.drain() {
			require.NotEqual(t, ArrayFailedOver, ev.Kind)
		}
	})
}

// An engine that owns no node (or not the primary's) decides nothing and
// commits nothing, even when it judges the node failed.
func TestEngineFailoverOnlyOwned(t *testing.T) {
	r := newRig(t, nil)
	for range 3 {
		r.e.Observe("cn0", Observation{Miss: Refused})
	}
	require.Equal(t, Failed, r.e.State("cn0"))
	r.lead.lose()
	v, err := r.act.Load(context.Background())
	require.NoError(t, err)
	res, err := r.e.Failover(context.Background(), v)
	require.NoError(t, err)
	require.Zero(t, res.Moved)
	require.Zero(t, r.act.commits)
}

// A commit that conflicts (the array changed since it was loaded) is
// decided again on a reload, and committed.
func TestEngineConflictRetried(t *testing.T) {
	r := newRig(t, nil)
	for _, n := range []string{"cn1", "cn2"} {
		r.e.Observe(n, Observation{OK: true})
	}
	for range 3 {
		r.e.Observe("cn0", Observation{Miss: Refused})
	}
	r.act.beforeCommit = func(n int) {
		if n == 1 {
			r.act.bump("id-da0") // someone else's write, keeping the primary
		}
	}
	v, err := r.act.Load(context.Background())
	require.NoError(t, err)
	res, err := r.e.Failover(context.Background(), v)
	require.NoError(t, err)
	require.Equal(t, 1, res.Moved)
	require.Equal(t, 2, r.act.commits)
	require.Len(t, r.act.moves, 1)
	require.Equal(t, 1, r.act.moves[0].Array.Ref, "decided on the reloaded array (bumped once)")
	require.Equal(t, uint64(2), r.act.array("id-da0").Epoch)

	// An array that keeps conflicting gives up after a bounded number of
	// attempts, with ErrConflict.
	r2 := newRig(t, nil)
	for range 3 {
		r2.e.Observe("cn0", Observation{Miss: Refused})
	}
	r2.e.Observe("cn1", Observation{OK: true})
	r2.act.beforeCommit = func(int) { r2.act.bump("id-da0") }
	v, err = r2.act.Load(context.Background())
	require.NoError(t, err)
	_, err = r2.e.Failover(context.Background(), v)
	require.ErrorIs(t, err, ErrConflict)
	require.Equal(t, commitAttempts, r2.act.commits)
	require.Empty(t, r2.act.moves)
}

// An array whose primary's node went silent and whose only candidate is
// held down waits for it, reported once, and moves the moment the
// hold-down ends.
func TestEngineHeldDownWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, nil)
		r.act.arrs[0].Controllers = r.act.arrs[0].Controllers[:2]
		r.run(t)
		r.clock.advance(50 * time.Millisecond)
		r.prober.set("cn1", behaviour{refuse: true}) // failed at 300 ms
		r.clock.advance(300 * time.Millisecond)
		require.Equal(t, Failed, r.e.State("cn1"))
		r.prober.set("cn1", behaviour{}) // back at 400 ms: held down until 5.4 s
		r.clock.advance(100 * time.Millisecond)
		r.prober.set("cn0", behaviour{hang: true}) // last answer at 400 ms: failed at 2.4 s
		r.clock.advance(2 * time.Second)

		evs := r.drain()
		failed, ok := find(evs, NodeFailed, "cn0")
		require.True(t, ok)
		require.Equal(t, at(2400), failed.At)
		require.Equal(t, Silent, failed.Transition.Cause)
		wait, ok := find(evs, ArrayWaiting, "cn0")
		require.True(t, ok, "events: %v", evs)
		var hd *HeldDownError
		require.ErrorAs(t, wait.Err, &hd)
		require.Equal(t, []string{"cn1"}, hd.Nodes)
		require.Equal(t, 3*time.Second, hd.Wait)
		require.Equal(t, 1, r.e.Stats().Waiting)
		require.Empty(t, r.act.moves)

		r.clock.advance(2949 * time.Millisecond)
		require.Equal(t, at(5399), r.clock.Now())
		require.Empty(t, r.act.moves, "still held down")
		r.act.mu.Lock()
		require.Len(t, r.act.blocked, 1, "reported once: %v", r.act.blocked)
		r.act.mu.Unlock()
		r.clock.advance(time.Millisecond)
		evs = r.drain()
		moved, ok := find(evs, ArrayFailedOver, "cn0")
		require.True(t, ok)
		require.Equal(t, at(5400), moved.At)
		require.Equal(t, "c1", moved.Decision.NewPrimary.ID)
		require.Zero(t, r.e.Stats().Waiting)
	})
}

// With no healthy secondary the array is stuck, reported once per
// distinct condition, and reported again after it recovered.
func TestEngineStuck(t *testing.T) {
	r := newRig(t, nil)
	for _, n := range []string{"cn0", "cn1", "cn2"} {
		for range 3 {
			r.e.Observe(n, Observation{Miss: Refused})
		}
	}
	ctx := context.Background()
	for range 3 {
		v, err := r.act.Load(ctx)
		require.NoError(t, err)
		_, err = r.e.Failover(ctx, v)
		require.NoError(t, err)
	}
	require.Len(t, r.act.blocked, 1)
	require.Contains(t, r.act.blocked[0], "no healthy secondary")
	stuck, ok := find(r.drain(), ArrayStuck, "cn0")
	require.True(t, ok)
	require.ErrorIs(t, stuck.Err, ErrNoHealthySecondary)

	r.e.Observe("cn0", Observation{OK: true}) // the primary is back: nothing to do
	v, _ := r.act.Load(ctx)
	_, err := r.e.Failover(ctx, v)
	require.NoError(t, err)
	for range 3 {
		r.e.Observe("cn0", Observation{Miss: Refused})
	}
	_, err = r.e.Failover(ctx, v)
	require.NoError(t, err)
	require.Len(t, r.act.blocked, 2, "a new failure is reported again")
}

// Nobody reads the events: the engine never blocks, keeps the newest
// EventBuffer events and counts the others dropped.
func TestEngineEventsNeverBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(c *EngineConfig) { c.EventBuffer = 2 })
		var hooked []Transition
		r.e.cfg.OnTransition = func(tr Transition, _ Observation) { hooked = append(hooked, tr) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 50 {
				r.e.Observe("cn0", Observation{OK: true})
				r.e.Observe("cn0", Observation{Miss: Refused})
			}
		}()
		<-done // a blocked send would deadlock the bubble and fail the test
		require.Equal(t, uint64(98), r.e.Stats().EventsDropped, "100 transitions, 2 kept")
		require.Len(t, hooked, 100, "the synchronous hook sees every one")
		evs := r.drain()
		require.Len(t, evs, 2)
		require.Equal(t, NodeHealthy, evs[0].Kind, "the newest kept")
		require.Equal(t, NodeSuspect, evs[1].Kind)
	})
}

func TestNewEngineValidates(t *testing.T) {
	r := newRig(t, nil)
	for name, cfg := range map[string]EngineConfig{
		"no leadership":         {Actuator: r.act},
		"no actuator":           {Leadership: r.lead},
		"bad health":            {Leadership: r.lead, Actuator: r.act, Health: Config{Interval: time.Second}},
		"probe timeout too big": {Leadership: r.lead, Actuator: r.act, ProbeTimeout: time.Hour},
		"negative batch":        {Leadership: r.lead, Actuator: r.act, MaxBatch: -1},
		"backoff order": {Leadership: r.lead, Actuator: r.act, BackoffMin: time.Second,
			BackoffMax: time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewEngine(cfg)
			require.ErrorIs(t, err, ErrEngineConfig)
		})
	}
	e, err := NewEngine(EngineConfig{Leadership: r.lead, Actuator: r.act})
	require.NoError(t, err)
	require.ErrorIs(t, e.Run(context.Background()), ErrEngineConfig, "Run needs a Prober")
}
