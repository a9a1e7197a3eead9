// Package vda is the VDA control plane's domain model and its Cluster API:
// disk nodes (DN) with physical disks (PD), controller nodes (CN), disk
// arrays (DA) and exporters. Package portal serves Cluster over gRPC
// (api/portalpb); embedders may call Cluster directly.
//
// # Contracts for the monitor and the agents
//
// Objects are stored as JSON under these keys (helpers KeyDN, KeyPD, KeyCN,
// KeyDA, KeyExp):
//
//	/vda/dn/<dn>            DiskNode
//	/vda/pd/<dn>/<pd>       PhysicalDisk
//	/vda/cn/<cn>            ControllerNode
//	/vda/da/<da>            DiskArray (with its VDs and Cntlrs)
//	/vda/exp/<da>/<exp>     Exporter
//	/vda/status/...         Status of the object at the same path (KeyStatus)
//	/vda/listener/<t>/<a>/<p>  the node whose NVMe-oF listener t a:p is (KeyListener)
//	/vda/binding/node/<id>  Binding of a node to its agent's ID (KeyNodeBinding)
//	/vda/binding/agent/<id> the same Binding, by agent ID (KeyAgentBinding)
//	/vda/cluster            StoreIdentity: cluster ID and LayoutVersion (KeyIdentity)
//	/vda/placers/<affinity> a Cluster with a Config.PlacementAffinity, on its lease (KeyPlacer)
//
// Specs are written by Cluster only; Status is written by the monitor only,
// under KeyStatus(specKey), so status writes never conflict with spec edits.
// The monitor may also edit a DiskArray's PrimaryCntlrID, Cntlrs[].Primary,
// Epoch (fencing epoch, starts at 1, only grows) and Initialized (set once
// the DA lvstore was first created), with a compare-and-swap on the DA key.
// The monitor creates both binding keys of a node together, only when both
// are absent, when it first reaches the node's agent; UnbindDiskNode and
// UnbindControllerNode (an operator's explicit step when an agent's ID
// legitimately changed) and deleting the node drop them.
// Status.Parts carries sub-object status by ID: a DA's VD and controller
// IDs, an exporter's port IDs (ExpPort.ID, one per controller).
//
// Every object has a stable 32-hex ID (nvmeof.NewID) from which agents
// derive SPDK names and NQNs; names are for users and never reach SPDK,
// except the exporter NQN (nvmeof.ExpNQN(da, exp)).
//
// # Sizing
//
// A DA stores everything the agents need: SizeBytes (the exported
// namespace, exactly --da-size), PhysicalSizeBytes, StripeCount,
// StripeSizeKB, CntlrCount, ClusterBytes (the DA lvstore's cluster size)
// and VDSizeBytes (each VD lvol on its PD). Layout computes them: SPDK
// rounds lvols to whole clusters and lvstore metadata takes space, so the
// cluster size divides --da-size and the raid holds the data clusters, the
// metadata clusters and a margin. LvstoreDataBytes is the same model for a
// PD's own lvstore (a 128 MiB malloc PD holds 31 clusters of 4 MiB).
//
// ModifyDiskArray grows SizeBytes online, in whole clusters, up to
// DiskArray.MaxSizeBytes: the data clusters of the DA lvstore on the raid
// (the same model, equal to what SPDK v24.01 reports), never less than
// PhysicalSizeBytes. The primary grows the lvol (bdev_lvol_resize); SPDK's
// target tells connected hosts, and each secondary's bdev_nvme passes the
// new size on to its own. Shrinking is refused, and so is growing past the
// raid: SPDK v24.01 cannot grow a raid0 (no new members, no bigger
// members), so that would need a new raid and bdev_lvol_grow_lvstore.
// DiskArray.QoS is set on the volume's bdev on the primary
// (bdev_set_qos_limit), again by every new primary.
//
// # Concurrency
//
// The store is a Cluster's only authority; any number of them, in any
// number of processes, may share one store.Store. Every mutation is one
// store transaction (store.Update, optimistic, retried on conflict).
// CreateDiskArray places on a candidate cache (every DN, PD and CN with
// its status, loaded once and kept current by a store watch, reloaded
// after the watch fails; Cluster.Close stops it) and commits the DA with
// the capacity it reserves (PD AllocatedBytes and VDCount, CN CntlrCount)
// in one transaction conditioned on the revision of every DN, PD and CN
// it chose as the cache had them, so a stale cache costs a retry and
// concurrent creates never over-allocate a PD or put two controllers of a
// DA on one CN. Concurrent creates of one Cluster share transactions
// (group commit, guarded by the union of their conditions, all or none).
// Clusters with a Config.PlacementAffinity (every vda-portal has one) share
// the DNs and CNs out among themselves and prefer their own shares, so
// the creates of several portals do not collide (see PlacementAffinity).
// Name uniqueness is a compare-and-swap on an absent key.
// Parents count their children (DiskNode.PDCount, PhysicalDisk.VDCount,
// ControllerNode.CntlrCount, DiskArray.ExpCount) in the same transactions,
// so deleting an object in use fails with ErrFailedPrecondition, race-free.
//
// # Placement
//
// Cluster asks a Placer (Config.Placer, DefaultPlacer if nil) for a new DA's
// PDs and CNs. The decision itself is package alloc's: DefaultPlacer is
// PolicyPlacer{alloc.Default{}}, which turns the candidates (with their
// capacity, location and health from the status keys) into alloc's inputs
// and a Shortage into ErrResourceExhausted; another alloc.Policy plugs in
// through PolicyPlacer. The Placer is pure and may run several times per
// request; Cluster re-checks its choice inside the transaction (distinct
// PDs with room, distinct online CNs), so a wrong Placer cannot
// over-allocate.
//
// # Events
//
// WatchEvents streams the changes of the objects above, decoded from the
// store's watch (every backend): records created, changed and deleted,
// the monitor's status reports as health transitions, and a DA's primary
// moving, told apart by DiskArray.SwitchoverEpoch (a switchover sets it to
// the epoch it commits, a failover leaves it). Each stream buffers at most
// WatchOptions.Buffer events; a slower consumer is cut off
// (ErrWatchLagged) so that it never holds up the store or other streams.
//
// # Errors
//
// Errors wrap ErrNotFound, ErrAlreadyExists, ErrInvalidArgument,
// ErrFailedPrecondition or ErrResourceExhausted, or come from the store.
// Package portal maps them to gRPC status codes, in one place.
//
// # Generated code
//
// The portal API is api/portalpb/portal.proto; regenerate with
//
//	go generate ./api/portalpb
//
// which runs protoc with protoc-gen-go and protoc-gen-go-grpc.
package vda
