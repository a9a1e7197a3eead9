// Package multihost deploys the seed tutorial's servers (seed 003,
// "Multiple Servers Deployment") on one network namespace each and runs
// the project's real binaries on them: the binaries built once per test
// binary, a private PostgreSQL configured as the tutorial says, the portal,
// the monitor and node agents, each a testproc.Proc with its own log. The
// end-to-end test (fake SPDK) and the real-SPDK tier share it; they differ
// only in the spdk_tgt each node runs.
//
// An Env kills every process it started when the test that made it ends,
// and DumpLogs prints their log tails for a failed test.
package multihost
