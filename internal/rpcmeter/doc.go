// Package rpcmeter is a JSON-RPC proxy for SPDK's unix socket that counts
// the requests it forwards by method, and can forward them one at a time,
// waiting for each answer before it sends the next (Serial). Benchmarks
// and tests put it between an agent and a real spdk_tgt: the counts show
// which RPCs a sync issues, and a Serial proxy is the "one call at a time"
// client the same sync is measured against.
package rpcmeter
