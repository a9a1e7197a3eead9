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
// bdev_examine finds them again after a restart or on another node), NVMe
// bdevs talk to other fakes over real TCP (see the blockdev and fabric
// subpackages), and local NVMe SSDs configured in Config.NVMeDevices attach
// with trtype PCIe and keep their bytes across Crash and Restart (across
// processes too when file-backed). SPDK's answers for PCIe come from its
// source (bdev_nvme_rpc.c, bdev_nvme.c), not from the recordings, which
// had no PCI device: an unknown or malformed address is -19 "No such
// device", the same device under a second name -17.
//
// The reference is the recordings in shared/spdk/transcripts (the tests use
// the copy in spdk/testdata/transcripts); the replay test in this package
// checks every recorded response, and testdata/KNOWN_DIFFERENCES.md lists
// what still differs and why.
//
// Tests use NewServer, which returns a running fake on a socket in a temporary
// directory. A test hands an NVMe-oF listener address to an agent before the
// fake listens on it with Target.Reserve (or Config.Reserved, ports held by
// package reserve that outlive the target): the port stays taken from then
// on, the fake serves there once a subsystem adds the listener, and while it
// is crashed, killed or the listener removed, connections are refused as by
// a real spdk_tgt, and no other process can take the port. Other programs embed a Target with New and Serve (cmd/vda-fakespdk
// is one). Faults (latency, errors, hangs, lost replies) are injected per
// method with Inject, and whole process failures with Crash and Restart.
// RPCCount, TotalRPCs and CalledMethods count the requests a target received,
// so a test can assert that a no-op pass only read. bdev_examine is
// asynchronous (Config.ExamineDelay) and reads the metadata while the target
// goes on answering; CompleteExamines finishes pending examines at once for
// deterministic tests. As in SPDK, a method that completes asynchronously
// (bdev_nvme_attach_controller over TCP, bdev_wait_for_examine,
// bdev_get_bdevs waiting for a bdev, framework_wait_init) replies when it
// is done and does not hold up the requests after it on the connection:
// their replies may come first.
//
// Limits: the fake implements the methods VDA drives (Methods lists them);
// rpc_get_methods still answers SPDK's recorded lists. NVMe-oF carries no
// namespace-change event, so a host bdev disappears on namespace removal only
// when host and target fakes share a process; across processes its I/O
// fails instead. Latency and histogram numbers are synthetic.
package spdktest
