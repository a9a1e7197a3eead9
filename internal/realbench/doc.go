// Package realbench runs VDA agents against real spdk_tgt processes for
// benchmarks and tests of node sync (issue 18): a disk node and a
// controller node, each an spdk_tgt in its own network namespace with an
// in-process agent in front of it, the agent talking to SPDK through an
// rpcmeter proxy that counts the RPCs of every sync and, for the baseline,
// forwards them one at a time.
//
// Its benchmark (BenchmarkNodeSync, see docs/BENCHMARKS.md) needs root,
// iproute2 and an SPDK tree in $VDA_SPDK_DIR, and skips without them. It is
// not part of scripts/test (go test runs no benchmark by default); the
// real-SPDK tier (internal/realtier) guards the no-op resync's RPCs with a
// small count through the same harness.
package realbench
