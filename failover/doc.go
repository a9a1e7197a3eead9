// Package failover holds the pure decision logic of VDA's controller failover:
// when a node counts as failed, and which controller of a disk array becomes
// its new primary.
//
// Nothing here does I/O or reads a clock. Callers (the monitor) feed health
// observations with their timestamps into a [Tracker] and act on the
// transitions it returns; [ChoosePrimary] picks the controller to promote.
// Keeping the logic pure makes it testable with exact timelines.
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
// Steps 2-4 only edit desired state; the monitor's push loop executes them.
package failover
