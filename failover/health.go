package failover

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Config says when a node counts as failed, and when a node that failed may
// take new primaries again. The zero value is not valid; start from
// [DefaultConfig].
type Config struct {
	// Interval is how often the engine probes each node's health. It is not
	// used by the Tracker itself but bounds what Window may be: a Window that
	// cannot hold MissThreshold probes would never fail anything.
	Interval time.Duration
	// MissThreshold is how many consecutive refused probes (strong
	// evidence, [Refused]) fail a node.
	MissThreshold int
	// Window is the span that those misses must all fall within. Misses older
	// than Window before the latest observation are forgotten.
	Window time.Duration
	// SlowTimeout is how long a node may give no good answer before weak
	// evidence ([Silent]: probes that time out) fails it. A node that
	// answers late but within SlowTimeout is never failed, however slow each
	// answer is. It must exceed Window, so that a node that is only slow is
	// never failed sooner than one that refuses.
	SlowTimeout time.Duration
	// HoldDown is how long a node that was failed must then stay healthy
	// before it may take new primaries ([Tracker.HoldDown], [Node.HoldDown]),
	// so that a node that fails and comes back every few seconds does not
	// get arrays moved back onto it each time. 0 disables it.
	HoldDown time.Duration
}

// DefaultConfig probes every 400 ms and fails a node after 3 consecutive
// refused probes within 1.5 s: detection of a dead node in about 1.2 s, so
// that detection plus promotion stays near the 2 s target, while one lost
// packet (or two) never fails a node. A node whose probes time out is failed
// only after 5 s without a good answer: several spdk_tgt on a small machine
// (each busy-polls a core) make answers take seconds, and a slow node is not
// a dead one. A node that failed takes no new primaries until it has been
// healthy for 10 s.
func DefaultConfig() Config {
	return Config{Interval: 400 * time.Millisecond, MissThreshold: 3, Window: 1500 * time.Millisecond,
		SlowTimeout: 5 * time.Second, HoldDown: 10 * time.Second}
}

// ErrInvalidConfig is returned by [Config.Validate].
var ErrInvalidConfig = errors.New("failover: invalid config")

// Validate checks that the configuration can ever declare a node failed,
// never on a single miss, and never sooner on weak evidence than on strong.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("%w: interval %v must be positive", ErrInvalidConfig, c.Interval)
	case c.MissThreshold < 2:
		return fmt.Errorf("%w: miss threshold %d must be at least 2 (one lost probe must never fail a node)",
			ErrInvalidConfig, c.MissThreshold)
	case c.Window < time.Duration(c.MissThreshold-1)*c.Interval:
		return fmt.Errorf("%w: window %v cannot hold %d probes %v apart", ErrInvalidConfig,
			c.Window, c.MissThreshold, c.Interval)
	case c.SlowTimeout <= c.Window:
		return fmt.Errorf("%w: slow timeout %v must exceed the window %v (a node that only answers late must not "+
			"be failed sooner than one that refuses)", ErrInvalidConfig, c.SlowTimeout, c.Window)
	case c.HoldDown < 0:
		return fmt.Errorf("%w: hold-down %v is negative", ErrInvalidConfig, c.HoldDown)
	}
	return nil
}

// State is a node's health as the Tracker judges it.
type State int

// Health states. A node starts Unknown and becomes Healthy on its first good
// probe. A refused probe makes it Suspect, and MissThreshold of them within
// the window Failed. A probe that times out makes an Unknown node Suspect and
// leaves a Healthy one Healthy (late is not dead); SlowTimeout without a
// good probe makes any node Failed. A good probe makes any state Healthy
// again.
const (
	Unknown State = iota
	Healthy
	Suspect
	Failed
)

func (s State) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Suspect:
		return "suspect"
	case Failed:
		return "failed"
	default:
		return "unknown"
	}
}

// Miss is the class of evidence a probe that did not prove a node alive
// gives.
type Miss int

const (
	// Refused is strong evidence that nothing is there: the connection was
	// refused, reset or closed, the agent answered that its data plane is
	// gone, or it answered with any other error. MissThreshold of them
	// within Window fail a node.
	Refused Miss = iota
	// Silent is weak evidence: no answer in time (the prober's deadline, or
	// the agent saying its data plane did not answer in time). It fails a
	// node only once the node has given no good answer for SlowTimeout.
	Silent
)

func (m Miss) String() string {
	if m == Silent {
		return "silent"
	}
	return "refused"
}

// Probe is one health observation of a node.
type Probe struct {
	Node string
	// At is when the result was known (for a good probe, when the answer
	// arrived: however long it took, the node was alive then).
	At time.Time
	// OK is true when the node answered and proved its data plane alive.
	OK bool
	// Miss classifies a probe that is not OK; the zero value is Refused.
	Miss Miss
	// Instance identifies the node's SPDK instance (and agent) when OK; a
	// change means the node restarted and needs a full re-sync.
	Instance string
}

// Transition is what one Probe changed.
type Transition struct {
	Node     string
	From, To State
	// Restarted is true when the probe reported a different instance than the
	// last good probe did.
	Restarted bool
	// Cause, when the probe failed the node (To is Failed and From is not),
	// is the evidence that did: Refused (MissThreshold refusals within
	// Window) or Silent (no good answer for SlowTimeout).
	Cause Miss
	// Silence is how long the node had given no good answer at a miss:
	// since its last good probe, or since it was first observed.
	Silence time.Duration
}

// Changed reports whether the transition is worth acting on.
func (t Transition) Changed() bool { return t.From != t.To || t.Restarted }

type nodeHealth struct {
	state    State
	refused  []time.Time // refused probes since the last good one, within Window, oldest first
	instance string
	// quietSince is the last good probe, or the first observation.
	quietSince time.Time
	// held: the node failed and has not yet been Healthy for HoldDown since
	// stableSince, when it last became Healthy.
	held        bool
	stableSince time.Time
	cause       Miss // why it is Failed
}

// Tracker keeps the health of many nodes. It is not safe for concurrent use;
// the monitor owns one per goroutine or guards it.
type Tracker struct {
	cfg   Config
	nodes map[string]*nodeHealth
}

// NewTracker returns a Tracker; it fails if cfg is invalid.
func NewTracker(cfg Config) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tracker{cfg: cfg, nodes: make(map[string]*nodeHealth)}, nil
}

// Observe records a probe and returns the transition it caused.
func (t *Tracker) Observe(p Probe) Transition {
	n := t.nodes[p.Node]
	if n == nil {
		n = &nodeHealth{quietSince: p.At}
		t.nodes[p.Node] = n
	}
	tr := Transition{Node: p.Node, From: n.state}
	if n.held && n.state == Healthy && !p.At.Before(n.stableSince.Add(t.cfg.HoldDown)) {
		n.held = false // served its hold-down
	}
	if p.OK {
		tr.Restarted = n.instance != "" && p.Instance != n.instance
		n.instance = p.Instance
		n.refused = n.refused[:0]
		if p.At.After(n.quietSince) {
			n.quietSince = p.At
		}
		if n.state != Healthy {
			n.stableSince = p.At
		}
		n.state = Healthy
		tr.To = n.state
		return tr
	}
	tr.Silence = max(0, p.At.Sub(n.quietSince))
	if p.Miss == Silent {
		switch {
		case n.state == Failed:
		case tr.Silence >= t.cfg.SlowTimeout:
			n.state, tr.Cause = Failed, Silent
		case n.state == Unknown:
			n.state = Suspect
		}
	} else {
		n.refused = append(n.refused, p.At)
		cutoff := p.At.Add(-t.cfg.Window)
		keep := 0
		for keep < len(n.refused) && !n.refused[keep].After(cutoff) {
			keep++
		}
		n.refused = append(n.refused[:0], n.refused[keep:]...)
		switch {
		case n.state == Failed:
			// Stays failed until a good probe.
		case len(n.refused) >= t.cfg.MissThreshold:
			n.state, tr.Cause = Failed, Refused
		case tr.Silence >= t.cfg.SlowTimeout:
			n.state, tr.Cause = Failed, Silent
		default:
			n.state = Suspect
		}
	}
	if n.state == Failed {
		n.held = true
	}
	if n.state == Failed && tr.From != Failed {
		n.cause = tr.Cause
	}
	tr.To = n.state
	return tr
}

// FailedBy returns the evidence that failed node (Refused or Silent), and
// false when the node is not Failed now.
func (t *Tracker) FailedBy(node string) (Miss, bool) {
	n := t.nodes[node]
	if n == nil || n.state != Failed {
		return 0, false
	}
	return n.cause, true
}

// HoldDown returns how much longer, as of now, node must stay Healthy before
// it may take new primaries: 0 for a node that never failed (or that is
// unknown) and for one that has been Healthy for Config.HoldDown since it
// last failed; the whole HoldDown for a failed node that is not Healthy now.
// A refusal restarts the hold-down (at the next good probe); a late answer
// does not, as it does not make a Healthy node anything else.
func (t *Tracker) HoldDown(node string, now time.Time) time.Duration {
	n := t.nodes[node]
	if n == nil || !n.held {
		return 0
	}
	if n.state != Healthy {
		return t.cfg.HoldDown
	}
	return max(0, n.stableSince.Add(t.cfg.HoldDown).Sub(now))
}

// State returns a node's current state (Unknown for a node never observed).
func (t *Tracker) State(node string) State {
	if n := t.nodes[node]; n != nil {
		return n.state
	}
	return Unknown
}

// Forget drops a node (it was deleted from the cluster).
func (t *Tracker) Forget(node string) { delete(t.nodes, node) }

// Failed lists the nodes currently judged failed, sorted.
func (t *Tracker) Failed() []string {
	var out []string
	for id, n := range t.nodes {
		if n.state == Failed {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
