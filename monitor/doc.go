// Package monitor drives the cluster's nodes: it builds each node's desired
// state from the store, pushes it to the node's agent, writes the reported
// status back, tracks node health and runs failover.
//
// Several monitors split the nodes among themselves through store leases
// ([Membership]): each registers a key bound to its lease, and a node belongs
// to the live member that wins rendezvous hashing for it ([Owner]). A monitor
// that dies loses its key when its lease expires, and its nodes move to the
// others; a monitor cut off from the store stops driving nodes as soon as it
// can no longer be sure its lease is alive, so no node is driven by two
// monitors at once for longer than the lease TTL.
package monitor
