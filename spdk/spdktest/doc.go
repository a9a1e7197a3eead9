// Package spdktest is a faithful fake of SPDK v24.01's spdk_tgt JSON-RPC
// server, for tests and for the dev cluster.
//
// It speaks SPDK's wire protocol on a unix socket byte for byte (framing,
// pipelining, the truncated reply to id-less requests, the -32600/-32601/-1
// protocol errors and strict "spdk_json_decode_object failed" parameter
// decoding) and keeps SPDK's state machine: start-up phases, one namespace for
// bdev names, aliases and uuids, claims, lvstores and lvols, raid0, passthru,
// NVMe-oF subsystems, listeners and hosts, and NVMe-oF initiator controllers.
// Real bytes flow through it: malloc bdevs keep data in memory, aio bdevs in
// their file, lvstores write their metadata onto their base bdev (so
// bdev_examine finds them again after a restart or on another node), and NVMe
// bdevs talk to other fakes over real TCP (see the blockdev and fabric
// subpackages).
//
// The reference is the recordings in shared/spdk/transcripts; the replay test
// in this package checks every recorded response, and
// testdata/KNOWN_DIFFERENCES.md lists what still differs and why.
//
// Tests use NewServer, which returns a running fake on a socket in a temporary
// directory. Other programs embed a Target with New and Serve. Faults (latency,
// errors, hangs, lost replies) are injected per method with Inject, and whole
// process failures with Crash and Restart.
package spdktest
