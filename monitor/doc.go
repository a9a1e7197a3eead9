// Package monitor drives the cluster's nodes: it builds each node's desired
// state from the store, pushes it to the node's agent, writes the reported
// status back, tracks node health and runs failover.
//
// # Membership
//
// Several monitors split the nodes among themselves through store leases
// ([Membership]): each registers a key bound to its lease, and a node belongs
// to the live member that wins rendezvous hashing for it ([Owner]). A monitor
// that dies loses its key when its lease expires, and its nodes move to the
// others; a monitor cut off from the store stops driving nodes as soon as it
// can no longer be sure its lease is alive, so no node is driven by two
// monitors at once for longer than the lease TTL.
//
// # Planning
//
// A [Snapshot] is everything under vda.Prefix, decoded, at one revision: a
// monitor's [SnapshotCache] keeps one current from a store watch (decoding
// only what changed), [LoadSnapshot] reads one at once. [Build], which is
// pure, turns it into one agentpb.SyncRequest per node whose generation is
// that revision. A push is complete (the agent deletes
// what it does not name), so an object that cannot be decoded or refers to
// something missing never silently drops out of a state: it is reported as a
// [Problem] and the nodes it may concern are held (not pushed) until it is
// fixed.
//
// A secondary controller re-exports its primary's export, so a DA's
// secondary enters its node's state only once the primary reported the DA
// ready at the DA's epoch, and each exporter enters a secondary's spec once
// the primary reported that exporter's port healthy: pushed earlier, the
// secondary's attach would be refused and retried, each retry a whole sync
// of its node. The status write that makes a primary ready asks for a round
// at once. This holds back only what a node never had: what the store shows
// the node reported, or what the Planner planned for it before, stays in
// its state whatever the primary reports (leaving it out would tear it
// down), so a failover's re-pointed secondaries and a new monitor keep
// every path that exists. While a primary is not ready the DA's and
// exporter's statuses carry its error.
//
// # Pushing
//
// [Monitor.Run] keeps one worker per owned node. Workers coalesce (only the
// newest plan is pushed), skip a push whose state the agent already applied
// (unless a resync or a restarted agent forces it), retry with exponential
// backoff, and never wait for each other, so one slow or dead agent only
// delays itself. Rounds are triggered by a store watch (spec keys only, not
// the monitor's own status writes), membership changes, health events and
// the periodic resync.
//
// # Reaching the agents
//
// A [Transport] connects a worker to its node's agent: [GRPC] (the default,
// with Config.TLS or, with Config.Insecure, in plaintext, plus
// Config.DialOptions) or [InProcess], which calls agents in this process
// through agent.(*Agent).Local as a named monitor, so the agent's role
// checks and errors are those of a gRPC call. The agent is reached at the
// node's Address, or at its name when it has none (the tutorial's nodes are
// named after their agents' addresses); the name is what the agent proves.
//
// # Node identity
//
// A node's address reaches an agent, and two nodes' addresses can reach
// one agent (another IP or spelling of one server).
// The first push to a node binds it to the agent ID its address reaches
// (HealthReply.agent_id) in one store transaction that creates
// vda.KeyNodeBinding and vda.KeyAgentBinding only when both are absent:
// one agent belongs to one node. A node whose address reaches an agent
// bound to another node is never synced, and its status says "address ...
// reaches the agent of node X". Every SyncRequest carries the bound agent ID
// (the agent refuses another), the node's name and the store revision. When
// an agent's ID legitimately changes (state directory lost, machine
// replaced) the node is not driven, its status says so, and nothing
// happens until an operator runs `vda dn unbind` (or `cn unbind`:
// vda.Cluster.UnbindDiskNode): then the node binds to the agent it reaches.
// With Config.TLS the agent of node X must also present a certificate
// naming vda://agent/X, wherever its address points, so an alias fails the
// handshake.
//
// # Bounded guards
//
// Generations are store revisions and epochs come from the store, so
// neither can exceed the store's revision. An agent whose guard holds more
// (Health reports it: a forged request, a store restored from an older
// backup) would refuse every real state forever. A worker that sees such a
// guard (any Health reply, the probe's included) pushes; when the agent
// refuses, it reads the store's current revision and, if the guard is above
// it, re-anchors the agent (agentpb Reanchor, a monitor-only call) to the
// request's generation and epochs, logging at Warn, and pushes again.
//
// # Status
//
// Each reply is written back per object under vda.KeyStatus(specKey) in a
// store.Update that merges into what is stored (a DN reports a DA's VDs, CNs
// its controllers and exporter ports) and is guarded by the spec's
// ModRevision in the snapshot the request was built from: a report about an
// old state never lands on newer desired state. A DA's (and exporter's)
// overall health is derived from its parts: failed when the primary's part is
// failed (its node failed), degraded when any part is not healthy, healthy
// when all are. A primary reporting its lvstore sets DiskArray.Initialized
// with a compare-and-swap.
//
// # Health and failover
//
// The monitor is the default wiring of a failover.Engine (Monitor.Engine):
// each worker is the engine's Prober for its node (the agent's Health call),
// [Membership] is its Leadership (the member key at its revision is the
// fence), and the store is its Actuator (the failover commit below); the
// engine's event stream reports node transitions and failovers.
//
// Every owned node is probed every failover.Config.Interval and the
// engine's failover.Tracker judges it. A probe tells slow from dead: a refused, reset
// or closed connection to the agent, or an agent that answers that its SPDK
// is gone (Unavailable), is strong evidence, and three of those in the
// window fail the node (about 1.2 s); no answer in time (the probe's
// deadline, or an agent saying its SPDK did not answer in time:
// DeadlineExceeded) is weak evidence, and fails the node only once it has
// given no good answer for failover.Config.SlowTimeout (5 s). A probe may
// take Config.HealthTimeout (half of that), so a late answer still counts;
// while it is outstanding each tick counts as silence and sends a fresh
// scout probe, which sees a refusal the late probe cannot (a host that
// rebooted under the connection). Several spdk_tgt busy-polling a small
// machine's cores make answers take seconds: failing such nodes moved
// arrays back and forth every few seconds, while a node that is really dead
// refuses at once and is still failed in about a second. Each failure is
// logged at Info with its evidence ("refused", or "silent for 5.2s") and
// counted in [Monitor.Stats].
//
// A failed node's objects are marked failed. For every DA whose primary is
// on an owned failed controller node, each round chooses a new primary
// (failover.ChoosePrimary) and commits it with Epoch+1, many DAs per
// transaction, each guarded by its revision and by this monitor's member
// key. The commit is the whole failover: the push loop then fences the disk
// nodes (they admit only the new primary's host NQN, which drops the old
// primary's connections), then pushes the new primaries, then the other
// controllers. Because rounds re-check the store, a failover that a dead
// monitor committed but did not push is finished by whichever monitor owns
// the nodes next, and one it did not commit is decided again. Pushes of
// older states still in flight to those nodes are cancelled, so the fence
// does not wait for them.
//
// # Damping
//
// Flapping needs a node that is failed and then comes back, so the first
// defence is not failing slow nodes (above). The second is hold-down: a node
// that failed takes no new primaries until it has been healthy for
// failover.Config.HoldDown (10 s) without a refusal. A DA whose only
// candidates are held down waits (its primary's part says "waiting for cn0
// to be stable for 10s") and fails over as soon as one is eligible: a timer
// wakes the control loop then. Waiting costs availability only when the
// node it waits for failed moments ago, which is exactly when moving the
// array onto it is most likely to move it again. It waits only while its
// primary may merely be slow (failed on silence): a primary whose node
// refused (dead for certain) moves at once, held-down node or not. Hold-down is known for
// the nodes this monitor owns; a candidate owned by another monitor is
// judged by its recorded health alone.
//
// After a failover the new primary is busy with the promotions. That needs
// no damping of its own: agents answer Health on an SPDK connection of their
// own and share one SPDK request among concurrent probes, a Sync that
// returns counts as a good answer, and timeouts fail a node only after
// SlowTimeout of silence (Config.BusyGrace, off by default, can excuse
// timeouts while a Sync is in flight; it delays the detection of a node
// that hangs mid-Sync by as much). Nor are failovers rate-limited per DA:
// when the new primary really dies too, its arrays must move at once. A push
// whose reply reports objects not ready is repeated with backoff until
// every object is (level-triggered, like the rounds).
package monitor
