// Package realtier is the project's real-SPDK test tier: the seed-003
// cluster (PostgreSQL, portal, monitor, two disk nodes, two controller
// nodes, each server in its own network namespace) with real spdk_tgt
// v24.01 processes under the real agents, and a host in the test process
// that drives the exported arrays over real NVMe/TCP (nvmeof/nvmetcp), one
// path at a time and multipath over all.
//
// Its tests need root, iproute2, PostgreSQL and an SPDK tree in
// $VDA_SPDK_DIR (see internal/spdkproc); without them they skip, unless
// VDA_REQUIRE_SPDK=1, which makes a missing prerequisite a failure.
// scripts/test runs this package in a step of its own, after every other
// package, so its busy-polling spdk_tgt processes do not disturb the
// timing of other tests. VDA_REALTIER_KILLS=N repeats the primary-kill
// failover N times and reports p50/p99 failover times.
package realtier
