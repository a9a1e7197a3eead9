// Package csi is VDA's Kubernetes CSI driver (spec v1.x): the Identity,
// Controller and Node services that kubelet and the CSI sidecars call.
//
// The controller speaks the portal's gRPC API: a CSI volume is a disk
// array (DA) whose name is derived from the CSI name (VolumeName) and
// whose description keeps the CSI name, so CreateVolume is idempotent
// across restarts without state of its own. ControllerPublishVolume adds
// the node's host NQN (its CSI node ID) to the volume's one exporter,
// creating the exporter on first publish; Unpublish removes the host, and
// deletes the exporter with its last host. The publish context carries
// the exporter's NQN and every controller listener, so a node never needs
// the portal.
//
// # Snapshots and clones
//
// A CSI snapshot is a VDA snapshot inside its volume's DA, ID
// "<DA>.snap-<32 hex>" (SnapshotName). A volume from a snapshot is a VDA
// clone of it in the same DA, ID "<DA>.csi-<32 hex>" (SplitVolumeID);
// DA volume IDs, "csi-<32 hex>", are those of the driver's first
// version. A volume from a volume is a clone of a hidden snapshot
// "clone-<32 hex>" of the source, deleted with the clone. A clone volume
// is exported by an exporter of the clone (named like the clone), and
// grown with the clone. Only a DA's volume is a snapshot or cloning
// source. VDA keeps a DA with snapshots or clones, and a snapshot with
// clones, so DeleteVolume and DeleteSnapshot fail with
// FailedPrecondition while such dependants exist (the CSI spec allows it
// for snapshots not independent of their volume); the CO retries.
//
// # QoS classes
//
// The driver has MODIFY_VOLUME. The mutable parameters (a Kubernetes
// VolumeAttributesClass's, MutableParameters) are the StorageClass's QoS
// keys, parsed by the same code: the DA's QoS limits, which
// ControllerModifyVolume changes online (a key absent keeps its limit, 0
// removes one) and CreateVolume applies over the StorageClass's. A clone
// volume has no QoS of its own (VDA's QoS is a DA's, on the DA's volume)
// and refuses them rather than change its source's.
//
// # Topology
//
// The topology key is TopologyKey and a segment is a VDA location: where
// a volume's controllers are. A node reports its Config.Location. A
// CreateVolume with accessibility requirements places the DA's
// controllers on CNs of those locations (preferred segments one at a
// time, then the requisite set: the DA's cn_locations), and answers with
// the locations of the CNs its controllers landed on, so pods go to
// nodes of those locations. Without requirements a volume is
// unconstrained and accessible from every node. The StorageClass
// parameter dnLocations constrains where the data goes. GetCapacity of a
// segment is the free space of the PDs a volume may use, or none if no
// online CN is in that location.
//
// # Node
//
// The node connects through a Connector: NVMeConnector runs nvme-cli
// (one `nvme connect` per controller listener, native NVMe multipath) and
// finds the namespace by its UUID; LoopConnector attaches a loop device
// over a sparse file per volume, for tests and machines without an
// NVMe/TCP initiator. NodeStageVolume formats an empty device (ext4 or
// xfs) and mounts it at the staging path, or for a block volume binds the
// device to a file there; NodePublishVolume bind-mounts the staging path.
//
// The driver advertises only what works (README, "Kubernetes (CSI
// driver)").
package csi
