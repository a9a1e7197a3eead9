// Package blockdev holds the real bytes behind the fake SPDK's bdevs: sparse
// memory disks (malloc), file-backed disks (aio), raid0 striping and an
// lvstore whose metadata is serialized onto its base device, so that a
// store written through one raid0 loads again on another node that
// assembles the same members in the same order with the same strip size.
//
// The package knows nothing about SPDK's JSON-RPC; spdktest maps its
// sentinel errors to SPDK's errno replies.
package blockdev
