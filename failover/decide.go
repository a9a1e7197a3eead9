package failover

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Controller is one controller of a disk array, as failover sees it.
type Controller struct {
	ID      string
	Idx     int
	CNID    string // the controller node hosting it
	Primary bool
}

// Node is a controller node, as failover sees it.
type Node struct {
	ID       string
	Location string // failure domain
	Healthy  bool
	// Load is how many primaries the node already serves; promotion prefers
	// the least loaded node so one failure does not pile every array onto
	// one survivor.
	Load int
	// HoldDown is how much longer the node must stay healthy before it may
	// take new primaries ([Tracker.HoldDown]: it failed recently). While it
	// is positive, ChoosePrimary does not pick the node, unless the array's
	// primary is on a Dead node and no other secondary can take it.
	HoldDown time.Duration
	// Dead: the node failed on strong evidence ([Tracker.FailedBy] says
	// Refused: its agent or data plane is gone, not merely slow). Its
	// arrays are down for certain, so waiting out a hold-down buys nothing.
	Dead bool
}

// Errors of the decision functions.
var (
	ErrNoHealthySecondary = errors.New("failover: no healthy secondary")
	ErrNoPrimary          = errors.New("failover: disk array has no primary")
	ErrBadTarget          = errors.New("failover: invalid switchover target")
	// ErrHeldDown is matched by a [*HeldDownError].
	ErrHeldDown = errors.New("failover: every healthy secondary is held down")
)

// HeldDownError is ChoosePrimary's answer when the only secondaries on
// healthy nodes are on nodes still held down: the array must wait (its
// primary's node has failed, so it is unavailable meanwhile) and be decided
// again after Wait.
type HeldDownError struct {
	// Nodes are the held-down nodes of those secondaries, sorted.
	Nodes []string
	// Wait is the shortest of their remaining hold-downs.
	Wait time.Duration
}

func (e *HeldDownError) Error() string {
	return fmt.Sprintf("failover: waiting for node %s to be stable (%v more)", strings.Join(e.Nodes, ", "), e.Wait)
}

// Is makes errors.Is(err, ErrHeldDown) true.
func (e *HeldDownError) Is(target error) bool { return target == ErrHeldDown }

// Decision is the outcome of a failover or switchover decision for one disk
// array: the controller to promote and the epoch to commit with it.
type Decision struct {
	NewPrimary Controller
	OldPrimary Controller
	Epoch      uint64
}

// primaryOf returns the array's primary controller.
func primaryOf(cntlrs []Controller) (Controller, error) {
	for _, c := range cntlrs {
		if c.Primary {
			return c, nil
		}
	}
	return Controller{}, ErrNoPrimary
}

// NeedsFailover reports whether the array's primary sits on a node that is
// not healthy (or unknown to nodes).
func NeedsFailover(cntlrs []Controller, nodes map[string]Node) bool {
	p, err := primaryOf(cntlrs)
	if err != nil {
		return false
	}
	n, ok := nodes[p.CNID]
	return !ok || !n.Healthy
}

// ChoosePrimary picks the secondary to promote when the primary's node has
// failed: a secondary on a healthy node that is not held down, preferring a
// failure domain other than the old primary's, then the least loaded node,
// then the lowest controller index (so the choice is deterministic). epoch
// is the array's current fencing epoch; the decision carries epoch+1. When
// the only secondaries on healthy nodes are held down, it returns a
// [*HeldDownError]: moving the array onto a node that has just come back is
// how an unstable node gets the same arrays moved back and forth. Unless
// the old primary's node is Dead: then a held-down node is chosen rather
// than none.
func ChoosePrimary(cntlrs []Controller, nodes map[string]Node, epoch uint64) (Decision, error) {
	old, err := primaryOf(cntlrs)
	if err != nil {
		return Decision{}, err
	}
	oldLoc := nodes[old.CNID].Location
	var cands []Controller
	held := map[string]time.Duration{}
	for _, c := range cntlrs {
		if c.Primary || c.CNID == old.CNID {
			continue
		}
		n, ok := nodes[c.CNID]
		switch {
		case !ok || !n.Healthy:
		case n.HoldDown > 0:
			held[c.CNID] = n.HoldDown
		default:
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 && len(held) > 0 && nodes[old.CNID].Dead {
		// The array is down for certain: a node that came back moments ago
		// serves it better than none. (Waiting pays off only while the old
		// primary may merely be slow, so a move could be undone.)
		for _, c := range cntlrs {
			if _, ok := held[c.CNID]; ok && !c.Primary {
				cands = append(cands, c)
			}
		}
		clear(held)
	}
	if len(cands) == 0 && len(held) > 0 {
		e := &HeldDownError{}
		for id, d := range held {
			e.Nodes = append(e.Nodes, id)
			if e.Wait == 0 || d < e.Wait {
				e.Wait = d
			}
		}
		sort.Strings(e.Nodes)
		return Decision{}, e
	}
	if len(cands) == 0 {
		return Decision{}, fmt.Errorf("%w: %d controllers, none but the primary's on a healthy node",
			ErrNoHealthySecondary, len(cntlrs))
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := nodes[cands[i].CNID], nodes[cands[j].CNID]
		aOther, bOther := oldLoc == "" || a.Location != oldLoc, oldLoc == "" || b.Location != oldLoc
		if aOther != bOther {
			return aOther
		}
		if a.Load != b.Load {
			return a.Load < b.Load
		}
		return cands[i].Idx < cands[j].Idx
	})
	return Decision{NewPrimary: cands[0], OldPrimary: old, Epoch: epoch + 1}, nil
}

// Switchover validates a planned move of the primary to the controller with
// index idx and returns the decision. The target must exist, be a secondary
// and sit on a healthy node. Hold-down does not apply: a switchover is an
// operator's explicit choice, not an automatic reaction to a failure.
func Switchover(cntlrs []Controller, nodes map[string]Node, idx int, epoch uint64) (Decision, error) {
	old, err := primaryOf(cntlrs)
	if err != nil {
		return Decision{}, err
	}
	for _, c := range cntlrs {
		if c.Idx != idx {
			continue
		}
		if c.Primary {
			return Decision{}, fmt.Errorf("%w: controller %d is already the primary", ErrBadTarget, idx)
		}
		if n, ok := nodes[c.CNID]; !ok || !n.Healthy {
			return Decision{}, fmt.Errorf("%w: controller %d is on node %s, which is not healthy",
				ErrBadTarget, idx, c.CNID)
		}
		return Decision{NewPrimary: c, OldPrimary: old, Epoch: epoch + 1}, nil
	}
	return Decision{}, fmt.Errorf("%w: no controller with index %d", ErrBadTarget, idx)
}

// Apply returns the controllers with the decision's new primary marked and
// every other controller a secondary. The input is not modified.
func (d Decision) Apply(cntlrs []Controller) []Controller {
	out := make([]Controller, len(cntlrs))
	for i, c := range cntlrs {
		c.Primary = c.ID == d.NewPrimary.ID
		out[i] = c
	}
	return out
}
