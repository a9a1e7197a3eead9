package vda

import (
	"fmt"
	"maps"
	"time"

	"github.com/vda-io/vda/nvmeof"
)

// Health is the observed condition of an object, as reported by the monitor.
type Health string

// Health values. An object nobody has reported on yet is HealthUnknown.
const (
	HealthUnknown  Health = ""
	HealthHealthy  Health = "healthy"
	HealthDegraded Health = "degraded"
	HealthFailed   Health = "failed"
)

// Status is the observed state of an object, written by the monitor under
// the object's status key (KeyStatus*), never together with its spec.
// Parts holds the status of sub-objects by their ID: a DA's VDs and
// controllers, an exporter's per-controller ports.
type Status struct {
	Health     Health    `json:"health,omitempty"`
	ErrorMsg   string    `json:"error_msg,omitempty"` // empty: no error
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
	TotalBytes uint64    `json:"total_bytes,omitempty"`
	FreeBytes  uint64    `json:"free_bytes,omitempty"`
	// Epoch, on the part of a DA's controller or of an exporter's port, is
	// the DA epoch at which its node reported it (0: not recorded).
	Epoch int64             `json:"epoch,omitempty"`
	Parts map[string]Status `json:"parts,omitempty"`
	// AppliedSizeBytes, on a DA, is the size of its volume as its primary
	// reported it: the monitor takes it only from the current primary's
	// report of the DA's current record (its size, primary and epoch), so
	// it never predates a resize it claims. A failover keeps it (the new
	// primary loads the same lvol) until the new primary reports. On a
	// clone, the size of its lvol as the DA's primary reported it. 0: not
	// reported yet (or by an agent that does not report it). A resize is
	// applied once it is at least the size asked for (see Resized).
	AppliedSizeBytes uint64 `json:"applied_size_bytes,omitempty"`
	// Inflated, on a clone, says the DA's primary reported its lvol
	// detached from its snapshot.
	Inflated bool `json:"inflated,omitempty"`
	// SecondariesOnly, on the part of an exporter's port on the DA's
	// primary (not healthy), says that the exporter's subsystem is there
	// and admits the DA's secondaries, but no host yet: the DA was not
	// initialized when the primary reported it. The secondaries may attach
	// it once the DA is initialized; the hosts are admitted by the
	// primary's next sync.
	SecondariesOnly bool `json:"secondaries_only,omitempty"`
}

// Part returns the status of sub-object id (the zero Status if none).
func (s Status) Part(id string) Status { return s.Parts[id] }

// AtEpoch returns s as it stands at DA epoch epoch: a part reported healthy
// at an older epoch says nothing of its controller's role now (a failover
// or switchover is under way, and the node has not applied it yet), so it
// is degraded until its node reports at epoch, and so is s if it said
// healthy. Parts without a recorded epoch are left as they are.
func (s Status) AtEpoch(epoch int64) Status {
	stale := false
	for id, p := range s.Parts {
		if p.Health == HealthHealthy && p.Epoch != 0 && p.Epoch < epoch {
			if !stale {
				s.Parts = maps.Clone(s.Parts)
				stale = true
			}
			p.Health, p.ErrorMsg = HealthDegraded, fmt.Sprintf("applying epoch %d (last reported at epoch %d)", epoch, p.Epoch)
			s.Parts[id] = p
		}
	}
	if stale && s.Health == HealthHealthy {
		s.Health, s.ErrorMsg = HealthDegraded, fmt.Sprintf("a controller is applying epoch %d", epoch)
	}
	return s
}

// DiskNode is a server running spdk_tgt and the DN agent. Stored at KeyDN.
type DiskNode struct {
	ID   string `json:"id"`
	Name string `json:"name"` // host:port of its agent, e.g. 192.168.0.14:9720
	// Address is where the monitor reaches the node's agent, as canonical
	// host:port, when that is not the node's name; "" means the name. The
	// agent proves the node's name (its certificate names it), not this.
	Address     string `json:"address,omitempty"`
	Description string `json:"description,omitempty"`
	// Listener is where the node's spdk_tgt serves NVMe-oF, normalised.
	// It is stored as the listener configuration string (listener_conf,
	// see nvmeof.TransportID.MarshalText), as the CLI gives it.
	Listener nvmeof.TransportID `json:"listener_conf"`
	Location string             `json:"location,omitempty"`
	Offline  bool               `json:"offline,omitempty"`
	// PDCount is how many PDs the DN holds (kept in the same transaction
	// as PD creates and deletes, so a delete can refuse a DN in use).
	PDCount int    `json:"pd_count,omitempty"`
	Status  Status `json:"-"`
}

// PDType is the kind of SPDK bdev a physical disk is.
type PDType string

// PD types.
const (
	PDMalloc PDType = "malloc"
	PDAio    PDType = "aio"
	PDNVMe   PDType = "nvme"
)

// PDConf is the bdev a PD is made from, as given by --pd-conf:
// {"type":"malloc","size":134217728}, {"type":"aio","filename":"/dev/sdb"},
// {"type":"nvme","traddr":"0000:01:00.0"}.
type PDConf struct {
	Type      PDType `json:"type"`
	SizeBytes uint64 `json:"size,omitempty"`     // malloc only
	Filename  string `json:"filename,omitempty"` // aio only
	TrAddr    string `json:"traddr,omitempty"`   // nvme only (PCIe address)
}

// PhysicalDisk is one bdev on a DN holding one lvstore. Stored at KeyPD.
type PhysicalDisk struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DNName      string `json:"dn_name"`
	DNID        string `json:"dn_id"`
	Description string `json:"description,omitempty"`
	Conf        PDConf `json:"conf"`
	// Force: the agent may format an aio device that holds foreign data
	// (PhysicalDiskSpec.Force).
	Force   bool `json:"force,omitempty"`
	Offline bool `json:"offline,omitempty"`
	// AllocatedBytes is the sum of the VDs carved from this PD, VDCount
	// their number; both change in the transaction that places or deletes
	// a DA, which is what prevents over-allocation.
	AllocatedBytes uint64 `json:"allocated_bytes,omitempty"`
	VDCount        int    `json:"vd_count,omitempty"`
	Status         Status `json:"-"`
}

// CapacityBytes is the space VDs can use on the PD: what the monitor
// reported (Status.TotalBytes) or, before that, the data clusters of the
// PD lvstore on a malloc bdev of the configured size. 0 means unknown.
func (pd PhysicalDisk) CapacityBytes() uint64 {
	if pd.Status.TotalBytes > 0 {
		return pd.Status.TotalBytes
	}
	if pd.Conf.Type == PDMalloc {
		return LvstoreDataBytes(pd.Conf.SizeBytes, PDClusterBytes)
	}
	return 0
}

// FreeBytes is CapacityBytes minus what the VDs reserve.
func (pd PhysicalDisk) FreeBytes() uint64 {
	c := pd.CapacityBytes()
	if c < pd.AllocatedBytes {
		return 0
	}
	return c - pd.AllocatedBytes
}

// ControllerNode is a server running spdk_tgt and the CN agent, hosting
// controllers of many DAs. Stored at KeyCN.
type ControllerNode struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Address is where the monitor reaches the node's agent, as canonical
	// host:port, when that is not the node's name; "" means the name. The
	// agent proves the node's name (its certificate names it), not this.
	Address     string `json:"address,omitempty"`
	Description string `json:"description,omitempty"`
	// Listener is where initiators connect, stored like DiskNode.Listener.
	Listener   nvmeof.TransportID `json:"listener_conf"`
	Location   string             `json:"location,omitempty"`
	Offline    bool               `json:"offline,omitempty"`
	CntlrCount int                `json:"cntlr_count,omitempty"` // controllers placed here
	Status     Status             `json:"-"`
}

// VD is one lvol of a DA on one PD, a raid0 member.
type VD struct {
	ID        string `json:"id"`
	Idx       int    `json:"idx"` // position in the raid0, fixed for life
	DNID      string `json:"dn_id"`
	DNName    string `json:"dn_name"`
	PDID      string `json:"pd_id"`
	PDName    string `json:"pd_name"`
	SizeBytes uint64 `json:"size_bytes"`
}

// Cntlr is one controller of a DA on one CN.
type Cntlr struct {
	ID      string `json:"id"`
	Idx     int    `json:"idx"` // selects the min/max cntlid range
	CNID    string `json:"cn_id"`
	CNName  string `json:"cn_name"`
	Primary bool   `json:"primary"`
}

// DAConf is the raid0 geometry given by --da-conf.
type DAConf struct {
	StripeCount  int `json:"stripe_count"`
	StripeSizeKB int `json:"stripe_size_kb"`
}

// DiskArray is a raid0 over VDs with an lvstore and one lvol exported
// through its controllers. Everything the agents need is stored here so it
// never has to be recomputed. Stored at KeyDA.
type DiskArray struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// SizeBytes is the exported namespace size (--da-size), exactly.
	SizeBytes uint64 `json:"size_bytes"`
	// PhysicalSizeBytes is --physical-size (>= SizeBytes).
	PhysicalSizeBytes uint64 `json:"physical_size_bytes"`
	StripeCount       int    `json:"stripe_count"`
	StripeSizeKB      int    `json:"stripe_size_kb"`
	CntlrCount        int    `json:"cntlr_count"`
	// ClusterBytes is the cluster size of the DA lvstore on the raid0.
	ClusterBytes uint64 `json:"cluster_bytes"`
	// VDSizeBytes is what each VD lvol reserves on its PD.
	VDSizeBytes uint64 `json:"vd_size_bytes"`
	// Epoch fences old primaries: it starts at 1 and grows on failover.
	Epoch          int64  `json:"epoch"`
	PrimaryCntlrID string `json:"primary_cntlr_id"`
	// Initialized is set by the monitor once the DA lvstore was created;
	// after that, a primary must find the lvstore, never create one.
	Initialized bool    `json:"initialized,omitempty"`
	VDs         []VD    `json:"vds"`
	Cntlrs      []Cntlr `json:"cntlrs"`
	ExpCount    int     `json:"exp_count,omitempty"` // exporters of this DA
	// SnapCount and CloneCount count the DA's snapshots and clones (kept
	// in the transactions that create and delete them, so a DA delete can
	// refuse a DA that still has some).
	SnapCount  int    `json:"snap_count,omitempty"`
	CloneCount int    `json:"clone_count,omitempty"`
	Status     Status `json:"-"`

	// CNLocations and DNLocations are the placement constraint the DA was
	// created with (DiskArraySpec), sorted; empty: anywhere.
	CNLocations []string `json:"cn_locations,omitempty"`
	DNLocations []string `json:"dn_locations,omitempty"`

	// QoS limits the DA's volume on its primary (zero: no limit).
	QoS QoS `json:"qos,omitzero"`

	// SwitchoverEpoch is the Epoch a planned switchover
	// (SwitchoverDiskArray) committed. A failover raises Epoch and leaves
	// it, so a move of the primary at an Epoch other than SwitchoverEpoch
	// was a failover (WatchEvents tells them apart by it).
	SwitchoverEpoch int64 `json:"switchover_epoch,omitempty"`
}

// QoS is a DA's I/O limits, set on its volume's bdev on the primary
// (SPDK bdev_set_qos_limit); 0 means no limit. IOPS count reads and writes
// together and are a multiple of 1000; bandwidths are in MiB per second
// (SPDK's "MB"), for reads and writes together, reads only and writes only.
// Every limit that is set applies.
type QoS struct {
	RWIOsPerSec       uint64 `json:"rw_ios_per_sec,omitempty"`
	RWMBytesPerSec    uint64 `json:"rw_mbytes_per_sec,omitempty"`
	ReadMBytesPerSec  uint64 `json:"r_mbytes_per_sec,omitempty"`
	WriteMBytesPerSec uint64 `json:"w_mbytes_per_sec,omitempty"`
}

// Primary returns the DA's primary controller (false if none).
func (da DiskArray) Primary() (Cntlr, bool) {
	for _, c := range da.Cntlrs {
		if c.ID == da.PrimaryCntlrID {
			return c, true
		}
	}
	return Cntlr{}, false
}

// ExpPort is an exporter's presence on one controller of its DA (the
// tutorial's "es"): a listener on that controller's CN.
type ExpPort struct {
	ID       string `json:"id"`
	CntlrIdx int    `json:"cntlr_idx"`
	// CNName and CNListener are not stored: GetExporter fills them in
	// from the controller's CN (where initiators connect).
	CNName     string             `json:"-"`
	CNListener nvmeof.TransportID `json:"-"`
}

// Exporter exports one volume of a DA to its hosts as an NVMe-oF
// subsystem with a listener on every controller's CN. A volume has at most
// one exporter (SPDK lets one subsystem claim a bdev); more hosts are added
// to that exporter. Stored at KeyExp.
type Exporter struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	DAName       string `json:"da_name"`
	DAID         string `json:"da_id"`
	Description  string `json:"description,omitempty"`
	NQN          string `json:"nqn"`
	InitiatorNQN string `json:"initiator_nqn"`
	SnapName     string `json:"snap_name,omitempty"`
	// SnapID or CloneID (with CloneName) name the snapshot or clone the
	// exporter exports instead of the DA's volume (at most one of them).
	SnapID    string    `json:"snap_id,omitempty"`
	CloneName string    `json:"clone_name,omitempty"`
	CloneID   string    `json:"clone_id,omitempty"`
	Ports     []ExpPort `json:"ports"`
	Status    Status    `json:"-"`
	// HostNQNs are the hosts the exporter admits (1 to MaxExporterHosts,
	// distinct, normalised), in the order they were added; InitiatorNQN
	// is the first of them, kept for readers that know only it. A record
	// stored without host_nqns decodes as [initiator_nqn].
	HostNQNs []string `json:"host_nqns"`
}

// Snapshot is a crash-consistent, read-only copy of a DA's volume, taken on
// the DA's primary (bdev_lvol_snapshot) and kept in the DA's lvstore, so it
// moves with the array on failover. Stored at KeySnap. Its status is
// healthy once the primary holds it (Ready), degraded with the error while
// it does not.
type Snapshot struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DAName      string `json:"da_name"`
	DAID        string `json:"da_id"`
	Description string `json:"description,omitempty"`
	// SizeBytes is the DA volume's size when the snapshot was asked for.
	SizeBytes uint64    `json:"size_bytes"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// ExpName is the exporter exporting the snapshot ("" if none): one
	// exporter per volume (a bdev backs one NVMe-oF namespace).
	ExpName string `json:"exp_name,omitempty"`
	// CloneCount is how many clones were made from it and still exist.
	CloneCount int    `json:"clone_count,omitempty"`
	Status     Status `json:"-"`
}

// Ready reports whether the DA's primary reported the snapshot taken.
func (s Snapshot) Ready() bool { return s.Status.Health == HealthHealthy }

// Clone is a writable volume made from a snapshot of a DA
// (bdev_lvol_clone), thin in the DA's lvstore. Stored at KeyClone.
type Clone struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DAName      string `json:"da_name"`
	DAID        string `json:"da_id"`
	SnapName    string `json:"snap_name"`
	SnapID      string `json:"snap_id"`
	Description string `json:"description,omitempty"`
	// SizeBytes is the clone's size: its snapshot's, or more after a
	// ModifyClone that grew it.
	SizeBytes uint64 `json:"size_bytes"`
	// SnapSizeBytes is its snapshot's size: a clone grown past it cannot
	// be inflated any more (SPDK v24.01; see ModifyClone).
	SnapSizeBytes uint64 `json:"snap_size_bytes"`
	// Inflate asks the primary to detach the clone from its snapshot
	// (bdev_lvol_inflate: every cluster is copied in); it is never undone.
	Inflate bool   `json:"inflate,omitempty"`
	ExpName string `json:"exp_name,omitempty"` // its exporter, if any
	Status  Status `json:"-"`
}

// Ready reports whether the primary reported the clone as asked (made,
// grown to SizeBytes and, if Inflate, inflated).
func (c Clone) Ready() bool { return c.Status.Health == HealthHealthy }

// Inflated reports whether the clone was asked to be inflated and the
// primary reported it done: it no longer depends on its snapshot.
func (c Clone) Inflated() bool { return c.Inflate && c.Ready() }

// Applied reports whether the DA's primary reported the clone as its
// record asks, field by field: ready, its lvol at SizeBytes or more
// (Status.AppliedSizeBytes) and, if Inflate, detached from its snapshot
// (Status.Inflated). It needs agents that report those; Ready alone
// already waits for a ModifyClone (which clears the clone's status).
func (c Clone) Applied() bool {
	return c.Ready() && c.Status.AppliedSizeBytes >= c.SizeBytes && (!c.Inflate || c.Status.Inflated)
}

// ClusterSummary counts the cluster's objects and its PD capacity.
type ClusterSummary struct {
	DNCount, PDCount, CNCount, DACount, ExpCount int
	TotalBytes, FreeBytes                        uint64
}
