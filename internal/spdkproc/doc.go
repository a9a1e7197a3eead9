// Package spdkproc runs real spdk_tgt processes (SPDK v24.01) for the
// project's real-SPDK test tier.
//
// The SPDK tree comes from $VDA_SPDK_DIR (a tree with wrap/spdk_tgt, such as
// the workspace's shared/spdk/v24.01 after its setup script ran). Available
// says why real SPDK cannot run here (the variable unset, the binary
// missing, not root); Require skips a test with that reason, or fails it
// when VDA_REQUIRE_SPDK=1 (CI).
//
// Start runs spdk_tgt without hugepages or PCI (--no-huge -s <MB> --no-pci
// --disable-cpumask-locks -m <mask> -r <socket> --wait-for-rpc), optionally
// inside a network namespace through a command maker such as
// (*netnstest.Host).Command, waits for its RPC socket, turns automatic
// examine off (bdev_set_options -d) and initializes the framework, as the
// seed tutorial does with rpc.py. A Target is controlled by signal (Stop,
// Kill, Pause, Resume) and watched for crashes: an exit nobody asked for,
// or log lines such as "base bdev desc null", "double free", "Segmentation
// fault" or "Aborted" (Crashed). Every spdk_tgt busy-polls the cores of its
// mask, so tests should run few of them at once and stop them all when
// they end (StartT kills its target at cleanup).
package spdkproc
