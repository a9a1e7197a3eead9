package failover

import (
	"time"
)

// EventKind says what an [Event] reports.
type EventKind int

// Event kinds: node health transitions, then disk array outcomes.
const (
	// NodeHealthy: a node answered for the first time, or again after being
	// Suspect (not Failed).
	NodeHealthy EventKind = iota + 1
	// NodeSuspect: a node stopped answering, not yet for long enough to fail.
	NodeSuspect
	// NodeFailed: a node is judged failed (Transition.Cause says on which
	// evidence); its arrays are failed over.
	NodeFailed
	// NodeRecovered: a failed node answers again. Event.HoldDown is how long
	// it must stay healthy before it takes new primaries.
	NodeRecovered
	// NodeRestarted: a node answers with another instance than before (it
	// restarted between two probes) without changing state.
	NodeRestarted
	// ArrayFailedOver: a failover was committed (Event.Decision).
	ArrayFailedOver
	// ArrayWaiting: an array's primary node failed and its only candidates
	// are held down (Event.Err is a [*HeldDownError]).
	ArrayWaiting
	// ArrayStuck: an array's primary node failed and no secondary can take
	// over (Event.Err wraps [ErrNoHealthySecondary]).
	ArrayStuck
)

func (k EventKind) String() string {
	switch k {
	case NodeHealthy:
		return "node healthy"
	case NodeSuspect:
		return "node suspect"
	case NodeFailed:
		return "node failed"
	case NodeRecovered:
		return "node recovered"
	case NodeRestarted:
		return "node restarted"
	case ArrayFailedOver:
		return "array failed over"
	case ArrayWaiting:
		return "array waiting"
	case ArrayStuck:
		return "array stuck"
	default:
		return "unknown"
	}
}

// Event is one thing the engine observed or did. Waiting and stuck arrays
// are reported once per distinct condition, not every round.
type Event struct {
	Kind EventKind
	At   time.Time
	// Node is the node of a node event, or the failed primary's node of an
	// array event.
	Node string
	// Transition is a node event's health transition.
	Transition Transition
	// HoldDown is, on NodeRecovered, how long the node is held down.
	HoldDown time.Duration
	// ArrayID and ArrayName identify an array event's array.
	ArrayID, ArrayName string
	// Decision is the committed move of ArrayFailedOver.
	Decision Decision
	// Err is why an array waits (ArrayWaiting) or cannot fail over
	// (ArrayStuck).
	Err error
}

// emit queues ev without ever blocking: when the buffer is full the oldest
// queued event is dropped (and counted) to make room, so a reader that
// falls behind sees the newest events and a gap it can detect through
// [EngineStats.EventsDropped].
func (e *Engine) emit(ev Event) {
	e.emitMu.Lock()
	defer e.emitMu.Unlock()
	for {
		select {
		case e.events <- ev:
			return
		default:
		}
		select {
		case <-e.events:
			e.dropped.Add(1)
		default:
		}
	}
}

// Events returns the engine's event stream. It is never closed and never
// blocks the engine: an unread stream keeps the newest
// EngineConfig.EventBuffer events. Events are for observation (metrics,
// logs, tests); an embedder that must act on a transition uses
// EngineConfig.OnTransition, which is synchronous.
func (e *Engine) Events() <-chan Event { return e.events }

// nodeEvent turns a transition into its event (ok false: none).
func (e *Engine) nodeEvent(tr Transition, at time.Time) (Event, bool) {
	ev := Event{At: at, Node: tr.Node, Transition: tr}
	switch {
	case tr.From == tr.To && tr.Restarted:
		ev.Kind = NodeRestarted
	case tr.From == tr.To:
		return ev, false
	case tr.To == Failed:
		ev.Kind = NodeFailed
	case tr.To == Suspect:
		ev.Kind = NodeSuspect
	case tr.To == Healthy && tr.From == Failed:
		ev.Kind = NodeRecovered
	case tr.To == Healthy:
		ev.Kind = NodeHealthy
	default:
		return ev, false
	}
	return ev, true
}
