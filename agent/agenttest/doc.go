// Package agenttest starts node agents for tests and embedders, and has a
// scripted agent for the faults a real one cannot be made to show.
//
// A Node is one disk or controller node as deployed, in the process: a
// real agent.Agent in front of its own fake spdk_tgt (spdk/spdktest),
// started as the tutorial starts one (--wait-for-rpc, bdev_set_options -d,
// framework_start_init), whose NVMe-oF listener is a real TCP socket on a
// reserved loopback port. Start returns one; StartNode is Start for a test.
// A monitor reaches it in the process (monitor.InProcess, with
// Config.Register) or, with Config.GRPC, over gRPC on a reserved loopback
// port that is the node's name. Kill crashes it, StopAgent takes only its
// agent away (a partition), Restart brings it back on the same addresses
// with the same state directory.
//
//	tr, _ := monitor.NewInProcess("m0")
//	cn := agenttest.StartNode(t, agenttest.Config{Role: agent.RoleCN, Name: "cn0", Register: tr})
//	_, err := cluster.CreateControllerNode(ctx, vda.NodeSpec{Name: cn.Name, Listener: cn.Listener})
//
// A Fake is an agent's gRPC service that applies nothing: it enforces the
// real agent's generation, epoch and agent-ID rules, records every Sync,
// answers every object OK, and can be made to hang, fail, refuse, answer
// Health late or restart as a new instance. Monitor tests use it where
// what matters is what the monitor sends and when.
package agenttest
