// Package devcluster runs a whole VDA cluster in one process on the fake
// SPDK: a store (embedded etcd by default), the portal, a monitor, and disk
// and controller node agents, each in front of its own fake spdk_tgt whose
// NVMe-oF listeners are real TCP sockets. It is what `vda-dev` runs, and a
// way for embedders and tests to get a working cluster anywhere.
//
// The layout follows the seed tutorial with 127.0.0.x for 192.168.0.x:
// the portal on .11:9520, disk node i on .14+i (agent 9720, NVMe-oF 4420),
// controller node i after the disk nodes (agent 9820, NVMe-oF 4430). So the
// tutorial's CLI steps work as written once the addresses are changed.
// Config.AnyPorts picks free ports instead, for tests. A running cluster
// holds every node's agent and NVMe-oF port (Ports, package
// spdk/spdktest/reserve), so a killed node refuses connections, as a dead
// server does, and gets the same ports back on Node.Restart; only a restart
// of the whole cluster binds them anew (Config.Ports keeps them held in
// between).
//
// Everything lives in Config.DataDir: the store, one sparse disk image per
// disk node (registered as an aio PD with Config.Register), the agents'
// fencing state and IDs, and (unless Config.Insecure) the cluster's CA and
// certificates in DataDir/tls (TLSDir): every component uses mutual TLS
// with roles as a deployment does, and the CLI finds admin.crt there with
// VDA_TLS_DIR set to TLSDir. A cluster restarted on the same directory
// finds its disk arrays and their data again. Node.Kill and Node.Restart stop and
// start one node's agent and fake SPDK, to watch a failover.
package devcluster
