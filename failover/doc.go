// Package failover holds the pure decision logic of VDA's controller failover:
// when a node counts as failed, and which controller of a disk array becomes
// its new primary.
//
// Nothing here does I/O or reads a clock. Callers (the monitor) feed health
// observations with their timestamps into a [Tracker] and act on the
// transitions it returns; [ChoosePrimary] picks the controller to promote.
// Keeping the logic pure makes it testable with exact timelines: a node is
// declared failed only after [Config.MissThreshold] consecutive missed
// heartbeats that all fall inside [Config.Window], so one lost packet, or
// misses spread thinly over a long time, never fails a node.
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
