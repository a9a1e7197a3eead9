// Package agent is VDA's node agent: the only code that changes SPDK. It
// serves the agent API (api/agentpb) to monitors and portals and converges
// the local spdk_tgt to the desired state of its node, a disk node (DN) or
// a controller node (CN).
//
// # Lifecycle
//
//	cfg := agent.DefaultConfig(agent.RoleDN)
//	cfg.SPDKAddr = "/tmp/dn.sock"
//	cfg.Listener, _ = nvmeof.ParseListenerConf(`{"trtype":"tcp","traddr":"192.168.0.14","trsvcid":"4420"}`)
//	cfg.TLS = mtls.Files("/etc/vda/tls", mtls.RoleAgent) // or cfg.Insecure = true
//	cfg.StateDir = "/var/lib/vda/agent"
//	a, err := agent.New(cfg)
//	defer a.Close()
//	err = a.Run(ctx) // or a.Serve(ctx, lis); returns after every goroutine exited
//
// Callers use Dial, which returns an agentpb.AgentClient (WithTLS for
// mutual TLS).
//
// # Sync
//
// Sync takes the complete desired state of the node. Every field is
// validated first (IDs, NQNs, sizes, transports, the role, and that the
// generation and every epoch are at most the store revision the monitor
// read); a bad request fails with InvalidArgument and changes nothing. A
// request for another agent ID, node ID (Config.NodeID) or node name (the
// one the agent's certificate names) fails with FailedPrecondition. Then
// the guard: a request
// whose generation is older than the last applied one, or whose epoch for
// a disk array is older than the last applied epoch of that array, fails
// with FailedPrecondition. Generation and epochs are recorded (in
// Config.StateDir when set, written atomically) before SPDK is touched, so
// a crash mid-Sync never lets an older state through afterwards. Syncs run
// one at a time, each bounded by Config.SyncTimeout, so a hung SPDK cannot
// hold the agent.
//
// A Sync is level-triggered: it lists what SPDK has, deletes what carries
// VDA's names (nvmeof.IsOwned*) and is not wanted, in reverse dependency
// order, creates what is missing in dependency order, and repairs drift (an
// object deleted behind the agent's back is made again, a changed host list
// is corrected). Objects without VDA's names are never touched. A repeated
// Sync of an unchanged state on an unchanged SPDK only reads. Every object
// gets an ObjectStatus; one failing object does not stop the others, and
// independent objects are worked on concurrently (Config.MaxInFlight).
//
// # Disk node
//
// Per PD: the bdev (malloc with 4 KiB blocks, aio on a file, or a local
// NVMe device attached with trtype PCIe), bdev_examine and
// bdev_wait_for_examine, then the lvstore, created only when examine
// finished and found none (so a restarted node finds its VDs again). Per
// VD: the fence first (every host but host_nqn is removed from the VD's
// subsystem, which drops its connections), then a thick lvol, the
// subsystem (serial and model from nvmeof, allow_any_host false), the
// namespace (uuid nvmeof.NamespaceUUID), the agent's listener and the host.
// Lvstores and lvols use clear_method write_zeroes, so a new VD never reads
// a previous tenant's data. Deletion runs in reverse: subsystems, lvols,
// the lvstores of PDs no longer wanted, their bdevs.
//
// # Health and identity
//
// Health calls spdk_get_version and reports the role, the last generation
// applied since start and an instance ID made of a random boot ID and the
// connection count of the probe's SPDK client: it changes when the agent
// restarts or has to reconnect to SPDK (a restarted spdk_tgt lost its
// state), which tells the monitor to re-sync. The probe has a connection
// of its own (Syncs use another), so a Sync with thousands of requests
// queued in SPDK does not delay it; each Sync starts with the same probe.
//
// Every agent has an ID, a UUID made on first start and kept in
// Config.StateDir (without one, a new ID per process), which Health
// reports. The monitor binds each node to the agent ID it first reaches and
// sends it in every Sync, so an address that reaches another node's agent
// (an alias) is never applied there.
//
// Health also reports the guard's generation and highest epoch. Neither
// can exceed the store's revision; a guard that holds more (a forged
// request, a store restored from an older backup) would refuse every real
// state forever, so a monitor that sees it calls Reanchor, which resets the
// guard to the store's values and is refused for a guard that holds
// nothing out of bounds.
//
// # Security
//
// New refuses a Config with neither TLS nor Insecure. With Config.TLS
// (mutual TLS with roles, package mtls) the agent's certificate must name
// vda://agent/<node name>, and callers must present a certificate of the
// CA whose role Policy allows: Sync and Reanchor only monitors, Health
// monitors and operators (admin). Config.AllowedCallers is an extra layer:
// only those source addresses may call. Status is the one mapping from the
// package's errors to gRPC codes.
package agent
