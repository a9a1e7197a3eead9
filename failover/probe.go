package failover

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// ProbeNode probes node with p every Health.Interval until ctx ends, and
// judges it. A probe may take ProbeTimeout, so a slow node's answer counts
// however late it comes; while it is outstanding, every tick records that
// the node is still silent (weak evidence, judged on schedule) and sends a
// scout, a fresh probe that replaces the previous scout: a refusal the late
// probe cannot see (a host that rebooted under its connection) shows within
// an interval. There are never more than two probes in flight, and
// refusals of probes in flight together (one reset) count once. When p is
// a [BreakNotifier], a broken connection is probed at once (beside a probe
// in flight, as a scout) and the schedule restarts from there; a good
// answer to a probe sent before the break is no evidence. It returns after
// every probe it started has returned.
func (e *Engine) ProbeNode(ctx context.Context, node string, p Prober) {
	t := e.clock.NewTimer(e.cfg.Health.Interval)
	defer t.Stop()
	bn, _ := p.(BreakNotifier)
	var broken <-chan struct{}
	if bn != nil {
		broken = bn.Broken(ctx, node)
	}
	type probe struct {
		started   time.Time
		asked     Asked
		cancel    context.CancelFunc
		timedOut  func() bool
		cancelled bool
	}
	type result struct {
		p   *probe
		obs Observation
	}
	done := make(chan result)
	running := 0 // goroutines, including cancelled scouts
	start := func() *probe {
		pctx, cancel, timedOut := withTimeout(ctx, e.clock, e.cfg.ProbeTimeout)
		pr := &probe{started: e.clock.Now(), asked: e.Asking(node), cancel: cancel, timedOut: timedOut}
		running++
		go func() {
			defer cancel()
			obs := p.Probe(pctx, node)
			if !obs.OK && timedOut() {
				obs.Miss = Silent
			}
			done <- result{pr, obs}
		}()
		return pr
	}
	late, scout := start(), (*probe)(nil)
	var lastRefused time.Time
	for {
		select {
		case <-ctx.Done():
			for ; running > 0; running-- {
				<-done // cancelled with ctx
			}
			return
		case r := <-done:
			running--
			switch r.p {
			case late:
				late, scout = scout, nil // the scout, if any, is the one to wait for now
			case scout:
				scout = nil
			}
			if r.p.cancelled || ctx.Err() != nil {
				continue // replaced by a fresher scout, or released: no evidence either way
			}
			if !r.obs.OK && r.obs.Miss == Refused {
				// Probes in flight together are refused together by one
				// reset: that is one piece of evidence, not two.
				now := e.clock.Now()
				if !lastRefused.IsZero() && now.Sub(lastRefused) < e.cfg.Health.Interval/2 {
					continue
				}
				lastRefused = now
			}
			if !r.obs.OK && r.obs.Miss == Silent && busy(p, node) {
				continue // the node is busy with the embedder's own request
			}
			r.obs.Asked = r.p.asked // a good answer asked before a break is no evidence (Observe)
			e.Observe(node, r.obs)
		case <-broken:
			broken = bn.Broken(ctx, node)
			e.broke(node)
			t.Reset(e.cfg.Health.Interval)
			if late == nil {
				late = start()
				continue
			}
			if scout != nil {
				scout.cancelled = true
				scout.cancel()
			}
			scout = start() // the one in flight may yet be answered
		case <-t.C():
			t.Reset(e.cfg.Health.Interval)
			if late == nil {
				late = start()
				continue
			}
			if !busy(p, node) {
				d := e.clock.Now().Sub(late.started)
				e.Observe(node, Observation{Miss: Silent,
					Err: fmt.Errorf("no health answer from %s for %v: %w", node, d.Round(time.Millisecond),
						context.DeadlineExceeded)})
			}
			if scout != nil {
				scout.cancelled = true
				scout.cancel()
			}
			scout = start()
		}
	}
}

func busy(p Prober, node string) bool {
	b, ok := p.(BusyProber)
	return ok && b.Busy(node)
}

// Asking marks a request to node about to be sent, for the Asked of the
// [Observation] its answer makes (a request of the embedder's own, such as
// a push of desired state, whose answer it passes to Observe).
func (e *Engine) Asking(node string) Asked {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Asked{breaks: e.breaks[node], known: true}
}

// broke records that the connection to node broke: answers to what was
// asked before are no evidence from now on.
func (e *Engine) broke(node string) {
	e.mu.Lock()
	e.breaks[node]++
	e.mu.Unlock()
}

// Observe feeds one observation of node, stamped with Now, to the engine
// (a probe's, or other evidence: a request of the embedder's own that the
// node answered proves it alive too) and returns the transition it caused.
// A good answer to a request asked before the node's connection last broke
// (Observation.Asked) changes nothing.
// A change is counted, emitted as an event, asks Run for a round and is
// handed to EngineConfig.OnTransition.
func (e *Engine) Observe(node string, o Observation) Transition {
	at := e.now()
	e.mu.Lock()
	if o.OK && o.Asked.known && o.Asked.breaks < e.breaks[node] {
		st := e.tracker.State(node)
		e.mu.Unlock()
		return Transition{Node: node, From: st, To: st}
	}
	tr := e.tracker.Observe(Probe{Node: node, At: at, OK: o.OK, Miss: o.Miss, Instance: o.Instance})
	if tr.Changed() && tr.To == Failed && tr.From != Failed {
		if tr.Cause == Silent {
			e.stats.NodesFailedSilent++
		} else {
			e.stats.NodesFailedRefused++
		}
	}
	hold := e.tracker.HoldDown(node, at)
	e.mu.Unlock()
	if !tr.Changed() {
		return tr
	}
	if ev, ok := e.nodeEvent(tr, at); ok {
		if ev.Kind == NodeRecovered {
			ev.HoldDown = hold
		}
		e.emit(ev)
	}
	e.log.Debug("node health changed", "node", node, "from", tr.From.String(), "to", tr.To.String(),
		"restarted", tr.Restarted, "error", o.Err)
	e.Kick()
	if e.cfg.OnTransition != nil {
		e.cfg.OnTransition(tr, o)
	}
	return tr
}

// Run probes the owned nodes of the Actuator's view with the Prober and
// fails over their arrays, until ctx ends: a round on every health change,
// leadership change, Kick, when a held-down array may move, after a failed
// round (with backoff) and every ResyncInterval. It returns ctx's error
// after every goroutine it started has exited.
func (e *Engine) Run(ctx context.Context) error {
	if e.cfg.Prober == nil {
		return fmt.Errorf("%w: Run needs a Prober", ErrEngineConfig)
	}
	probes := map[string]context.CancelFunc{}
	var wg sync.WaitGroup
	defer func() {
		for _, cancel := range probes {
			cancel()
		}
		wg.Wait()
	}()
	resync := e.clock.NewTimer(e.cfg.ResyncInterval)
	defer resync.Stop()
	retry := e.clock.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	held := e.clock.NewTimer(time.Hour)
	held.Stop()
	defer held.Stop()
	var backoff time.Duration
	for {
		changed := e.cfg.Leadership.Changed()
		res, err := e.round(ctx, probes, &wg)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			backoff = min(max(2*backoff, e.cfg.BackoffMin), e.cfg.BackoffMax)
			e.log.Warn("failover round failed", "error", err, "retry_in", backoff)
			retry.Reset(backoff)
		default:
			backoff = 0
		}
		if res.Wake > 0 {
			held.Reset(res.Wake)
		} else {
			held.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.kick:
		case <-changed:
		case <-retry.C():
		case <-held.C():
		case <-resync.C():
			resync.Reset(e.cfg.ResyncInterval)
		}
	}
}

// round loads the view, probes the nodes owned now (and no longer the
// others), and fails over.
func (e *Engine) round(ctx context.Context, probes map[string]context.CancelFunc, wg *sync.WaitGroup) (Result, error) {
	v, err := e.cfg.Actuator.Load(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("failover: load: %w", err)
	}
	owned := map[string]bool{}
	for _, n := range v.Nodes {
		if e.cfg.Leadership.Owns(n.ID) {
			owned[n.ID] = true
		}
	}
	for id, cancel := range probes {
		if !owned[id] {
			cancel()
			delete(probes, id)
			e.Forget(id)
		}
	}
	for id := range owned {
		if _, ok := probes[id]; !ok {
			pctx, cancel := context.WithCancel(ctx)
			probes[id] = cancel
			wg.Add(1)
			go func() { defer wg.Done(); e.ProbeNode(pctx, id, e.cfg.Prober) }()
		}
	}
	return e.Failover(ctx, v)
}
