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
// The node connects through a Connector: NVMeConnector runs nvme-cli
// (one `nvme connect` per controller listener, native NVMe multipath) and
// finds the namespace by its UUID; LoopConnector attaches a loop device
// over a sparse file per volume, for tests and machines without an
// NVMe/TCP initiator. NodeStageVolume formats an empty device (ext4 or
// xfs) and mounts it at the staging path, or for a block volume binds the
// device to a file there; NodePublishVolume bind-mounts the staging path.
//
// Snapshots and cloning are not offered: VDA's snapshots and clones live
// inside their DA (a DA with snapshots cannot be deleted, a snapshot with
// a dependent clone neither), which does not fit CSI's independent
// snapshot and volume lifetimes. Nor is topology: a location is a failure
// domain for placement, every volume is reachable from every node, and
// the portal's placement takes no location constraint. The driver
// advertises only what works (README, "Kubernetes (CSI driver)").
package csi
