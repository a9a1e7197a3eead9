// Package failover is VDA's controller failover: when a node counts as
// failed, which controller of a disk array becomes its new primary, and an
// embeddable [Engine] that runs both.
//
// The decisions are pure: a [Tracker] takes health observations with their
// timestamps and returns transitions, and [ChoosePrimary] picks the
// controller to promote. Neither does I/O or reads a clock, so they are
// tested with exact timelines.
//
// # The engine
//
// An [Engine] probes nodes, judges them with a Tracker and commits
// failovers, over three small interfaces an embedder implements:
//
//   - a [Prober] asks one node whether it is alive and returns an
//     [Observation] (answered, refused or silent);
//   - a [Leadership] says which nodes this instance owns, notifies changes,
//     and hands out a [Fence] that makes a commit conditional on still
//     being the leader;
//   - an [Actuator] loads the arrays and commits "array x: new primary y,
//     epoch+1" for a batch, under the fence and each array's revision
//     ([ErrConflict] makes the engine reload and decide again). It may
//     also be a [Reporter], told of arrays that wait or cannot move.
//
// [Engine.Run] does everything; an embedder with loops of its own (the
// monitor) calls [Engine.ProbeNode], [Engine.Observe] and [Engine.Failover]
// instead. The monitor is the default wiring: its workers' agent Health
// call is the Prober, its store Membership the Leadership, and a store
// transaction guarded by the member key the Actuator; a product with its
// own leadership (a Kubernetes Lease, say) or push path supplies its own.
// [Engine.Events] reports node transitions (healthy, suspect, failed,
// recovered and for how long held down), committed failovers and arrays
// that wait or are stuck; it never blocks the engine (a bounded buffer
// that drops the oldest event and counts it, [EngineStats.EventsDropped]).
// Time comes from an injected [Clock], so tests drive exact timelines.
//
// # Slow is not dead
//
// A probe that does not prove a node alive is one of two kinds of evidence.
// A refusal ([Refused]: the connection is refused, reset or closed, or the
// agent says its SPDK is gone) is strong: nothing is there, and
// [Config.MissThreshold] refusals within [Config.Window] fail the node (about
// 1.2 s with the defaults), so one lost packet, or refusals spread thinly
// over a long time, never fails it. A probe that times out ([Silent]) is
// weak: an SPDK that busy-polls a shared core answers late, and several of
// them on a small machine make answers take seconds. Timeouts fail a node
// only when it has given no good answer for [Config.SlowTimeout] (5 s), so a
// node hung for longer is failed once, while a node whose answers take a
// couple of seconds never is. Failing slow nodes is worse than waiting: the
// arrays move onto a node that the promotions then make slow too, and come
// back when the first one answers again.
//
// # Damping
//
// A node that failed does not take new primaries until it has been healthy
// for [Config.HoldDown] (10 s) without a refusal ([Tracker.HoldDown],
// [Node.HoldDown]); an array whose only candidates are held down waits for
// them ([HeldDownError]) rather than moving back onto a node that may fail
// again at once. That is what stops one unstable node from pulling the same
// arrays back and forth. Unless the primary's node failed on refusals
// ([Node.Dead]): that array is down for certain, so a held-down node takes
// it rather than none (on a real SPDK cluster, waiting turned a 1.2 s
// failover of a killed primary into 7.5 s whenever the other node had come
// back within the hold-down). No other damping is needed here: a genuine second
// failure (the new primary dies too) must still move the arrays at once,
// so failovers are not rate-limited per array, and a node made busy by the
// promotions it was given is protected by the slow rule above (and by the
// monitor counting a finished Sync as a good answer). A planned [Switchover]
// is an operator's choice and is not held down.
//
// The failover sequence itself (ARCHITECTURE.md section 6) is, for every disk
// array whose primary was on a failed controller node:
//
//  1. choose a healthy secondary ([ChoosePrimary]);
//  2. commit the new primary and a higher epoch in one store transaction;
//  3. fence: every disk node's VD subsystem admits only the new primary;
//  4. promote the new primary, re-point every other secondary, flip ANA states.
//
// The engine does steps 1 and 2 ([Actuator.Commit]); steps 3-4 only edit
// desired state, and the embedder's push loop (the monitor's) executes them.
package failover
