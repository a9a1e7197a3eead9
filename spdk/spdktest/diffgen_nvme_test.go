package spdktest

// Generated NVMe-oF initiator scenarios: target T exports one malloc
// namespace at 127.0.0.1:4420 (and an allow-listed subsystem at 4421);
// initiator I attaches with random valid and invalid parameters, then
// detaches.

const (
	genNvmeNQN  = "nqn.2016-06.io.spdk:cnode1"
	genNvmeNQN2 = "nqn.2016-06.io.spdk:cnode2"
	genNvmeHost = "nqn.2016-06.io.spdk:host1"
)

func genNvmeTarget() []string {
	listen := func(nqn, port string) []genKV {
		return []genKV{{"nqn", nqn}, {"listen_address", map[string]any{
			"trtype": "tcp", "traddr": "127.0.0.1", "adrfam": "ipv4", "trsvcid": port}}}
	}
	return []string{
		genLine("T", "nvmf_create_transport", []genKV{{"trtype", "TCP"}}),
		genLine("T", "bdev_malloc_create", []genKV{{"name", "m0"}, {"num_blocks", 2048}, {"block_size", 512}}),
		genLine("T", "bdev_malloc_create", []genKV{{"name", "m1"}, {"num_blocks", 2048}, {"block_size", 512}}),
		genLine("T", "nvmf_create_subsystem", []genKV{{"nqn", genNvmeNQN}, {"allow_any_host", true}, {"serial_number", "SPDK00000000000001"}}),
		genLine("T", "nvmf_subsystem_add_ns", []genKV{{"nqn", genNvmeNQN}, {"namespace", map[string]any{"bdev_name": "m0"}}}),
		genLine("T", "nvmf_subsystem_add_listener", listen(genNvmeNQN, "4420")),
		genLine("T", "nvmf_create_subsystem", []genKV{{"nqn", genNvmeNQN2}, {"serial_number", "SPDK00000000000002"}}),
		genLine("T", "nvmf_subsystem_add_ns", []genKV{{"nqn", genNvmeNQN2}, {"namespace", map[string]any{"bdev_name": "m1"}}}),
		genLine("T", "nvmf_subsystem_add_host", []genKV{{"nqn", genNvmeNQN2}, {"host", genNvmeHost}}),
		genLine("T", "nvmf_subsystem_add_listener", listen(genNvmeNQN2, "4421")),
	}
}

func genNvmeAttachBase() []genKV {
	return []genKV{{"name", "n0"}, {"trtype", "tcp"}, {"adrfam", "ipv4"}, {"traddr", "127.0.0.1"},
		{"trsvcid", "4420"}, {"subnqn", genNvmeNQN}}
}

// genNvmeDetach lists the controllers and detaches the one the call may
// have attached (under the name it used, when that was a string).
func genNvmeDetach(_ genMethod, params []genKV) []string {
	name := "n0"
	for _, kv := range params {
		if s, ok := kv.Value.(string); ok && kv.Key == "name" && s != "" {
			name = s
		}
	}
	return []string{
		genLine("I", "bdev_nvme_get_controllers", nil),
		genLine("I", "bdev_nvme_detach_controller", []genKV{{"name", name}}),
	}
}

func init() {
	genTopics["nvme_attach"] = genTopic{
		Seed: 15, N: 110,
		Setup: append([]string{`{"note": "generated: bdev_nvme_attach_controller with random valid and invalid parameters against a live target, each followed by get_controllers and a detach"}`},
			genNvmeTarget()...),
		Methods: []genMethod{{
			Method: "bdev_nvme_attach_controller", Target: "I",
			Base: genNvmeAttachBase(),
			Params: []genParam{
				{"name", genValues("n0", "n/0", "n 0")},
				{"trtype", genValues("TCP", "Tcp", "rdma", "pcie", "tcpx", "fc")},
				{"adrfam", genValues("IPv4", "IPV4", "ipv6", "ib", "fc", "intra_host", "ipv5")},
				{"traddr", genValues("127.0.0.1", "127.0.0.2", "localhost", "::1")},
				{"trsvcid", genValues("4420", "4421", "4499", "65536", "abc")},
				{"subnqn", genValues(genNvmeNQN, genNvmeNQN2, "nqn.2016-06.io.spdk:nosuch", "nqn.2014-08.org.nvmexpress.discovery")},
				{"hostnqn", genValues(genNvmeHost, "nqn.2016-06.io.spdk:other", "not-an-nqn")},
				{"hostaddr", genValues("127.0.0.1", "10.0.0.1")},
				{"hostsvcid", genValues("5000")},
				{"priority", genValues("1", "abc")},
				{"prchk_reftag", genValues(true, false)},
				{"prchk_guard", genValues(true, false)},
				{"hdgst", genValues(true, false)},
				{"ddgst", genValues(true, false)},
				{"fabrics_connect_timeout_us", genValues(1000000, 100)},
				{"multipath", genValues("failover", "multipath", "disable", "Disable")},
				{"num_io_queues", genValues(1, 65536, 65537, 4294967296)},
				{"ctrlr_loss_timeout_sec", genValues(-1, -2, 1, 2, 5, 2147483647, 2147483648)},
				{"reconnect_delay_sec", genValues(1, 2, 5, 10, 4294967295)},
				{"fast_io_fail_timeout_sec", genValues(1, 2, 3, 5, 10)},
				{"psk", genValues("/nonexistent/psk")},
				{"max_bdevs", genValues(1, 2, 128, 4294967295)},
			},
		}},
		Between: genNvmeDetach,
	}
	genTopics["nvme_opts"] = genTopic{
		Seed: 16, N: 50,
		Setup: append([]string{`{"note": "generated: bdev_nvme_set_options with random valid and invalid values, each followed by an attach with the defaults it set, get_controllers and a detach"}`},
			genNvmeTarget()...),
		Methods: []genMethod{{
			Method: "bdev_nvme_set_options", Target: "I",
			Base: []genKV{},
			Params: []genParam{
				{"action_on_timeout", genValues("none", "reset", "abort", "Reset")},
				{"timeout_us", genValues(1000000, 0)},
				{"timeout_admin_us", genValues(1000000, 0)},
				{"keep_alive_timeout_ms", genValues(10000, 0)},
				{"retry_count", genValues(2)},
				{"transport_retry_count", genValues(2, 255, 256)},
				{"bdev_retry_count", genValues(-1, -2, 3)},
				{"transport_ack_timeout", genValues(0, 31, 32, 255, 256)},
				{"ctrlr_loss_timeout_sec", genValues(-1, -2, 1, 2, 5)},
				{"reconnect_delay_sec", genValues(1, 2, 5, 10)},
				{"fast_io_fail_timeout_sec", genValues(1, 2, 5, 10)},
				{"disable_auto_failback", genValues(true)},
				{"generate_uuids", genValues(true)},
				{"transport_tos", genValues(0, 255, 256)},
				{"nvme_error_stat", genValues(true)},
				{"io_path_stat", genValues(true)},
				{"allow_accel_sequence", genValues(true)},
				{"nvme_adminq_poll_period_us", genValues(100, 10000000)},
				{"nvme_ioq_poll_period_us", genValues(100, 10000000)},
				{"io_queue_requests", genValues(256)},
				{"delay_cmd_submit", genValues(true, false)},
				{"rdma_srq_size", genValues(16)},
				{"rdma_max_cq_size", genValues(16)},
				{"arbitration_burst", genValues(1, 7, 8)},
				{"low_priority_weight", genValues(1, 255, 256)},
				{"dhchap_digests", genValues([]any{"sha256"})},
			},
		}},
		Between: func(genMethod, []genKV) []string {
			return append([]string{genLine("I", "bdev_nvme_attach_controller", genNvmeAttachBase())},
				genNvmeDetach(genMethod{}, genNvmeAttachBase())...)
		},
	}
}
