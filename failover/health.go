package failover

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Config says when a node counts as failed. The zero value is not valid; start
// from [DefaultConfig].
type Config struct {
	// Interval is how often the monitor probes each node's health. It is not
	// used by the Tracker itself but bounds what Window may be: a Window that
	// cannot hold MissThreshold probes would never fail anything.
	Interval time.Duration
	// MissThreshold is how many consecutive missed probes fail a node.
	MissThreshold int
	// Window is the span that those misses must all fall within. Misses older
	// than Window before the latest observation are forgotten.
	Window time.Duration
}

// DefaultConfig probes every 400 ms and fails a node after 3 consecutive
// misses within 1.5 s: detection in about 1.2 s, so that detection plus
// promotion stays near the 2 s target, while one lost packet (or two) never
// fails a node.
func DefaultConfig() Config {
	return Config{Interval: 400 * time.Millisecond, MissThreshold: 3, Window: 1500 * time.Millisecond}
}

// ErrInvalidConfig is returned by [Config.Validate].
var ErrInvalidConfig = errors.New("failover: invalid config")

// Validate checks that the configuration can ever declare a node failed, and
// never on a single miss.
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
	}
	return nil
}

// State is a node's health as the Tracker judges it.
type State int

// Health states. A node starts Unknown, becomes Healthy on its first good
// probe, Suspect on a miss, and Failed after MissThreshold consecutive misses
// within the window. A good probe makes any state Healthy again.
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

// Probe is one health observation of a node.
type Probe struct {
	Node string
	At   time.Time
	// OK is true when the node answered and proved its data plane alive.
	OK bool
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
}

// Changed reports whether the transition is worth acting on.
func (t Transition) Changed() bool { return t.From != t.To || t.Restarted }

type nodeHealth struct {
	state    State
	misses   []time.Time // consecutive misses, oldest first
	instance string
	lastOK   time.Time
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
		n = &nodeHealth{}
		t.nodes[p.Node] = n
	}
	tr := Transition{Node: p.Node, From: n.state}
	if p.OK {
		tr.Restarted = n.instance != "" && p.Instance != n.instance
		n.instance = p.Instance
		n.misses = n.misses[:0]
		n.lastOK = p.At
		n.state = Healthy
		tr.To = n.state
		return tr
	}
	n.misses = append(n.misses, p.At)
	cutoff := p.At.Add(-t.cfg.Window)
	keep := 0
	for keep < len(n.misses) && !n.misses[keep].After(cutoff) {
		keep++
	}
	n.misses = append(n.misses[:0], n.misses[keep:]...)
	switch {
	case n.state == Failed:
		// Stays failed until a good probe.
	case len(n.misses) >= t.cfg.MissThreshold:
		n.state = Failed
	default:
		n.state = Suspect
	}
	tr.To = n.state
	return tr
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
