package spdktest

// Generated nvmf target scenarios: nvmf_create_subsystem with random
// parameters (gen_nvmf_subsystem), and namespaces, listeners, hosts and
// ANA states on a subsystem that is re-created after every call
// (gen_nvmf_objects).

const genNQN = "nqn.2016-06.io.spdk:gen"

func init() {
	genTopics["nvmf_subsystem"] = genTopic{
		Seed: 15, N: 70,
		Setup: []string{`{"note": "generated: nvmf_create_subsystem with random valid and invalid parameters; each call is listed and deleted"}`},
		Methods: []genMethod{{
			Method: "nvmf_create_subsystem",
			Base:   []genKV{{"nqn", genNQN}},
			Params: []genParam{
				{"nqn", genValues("nqn.2014-08.org.nvmexpress:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301", "nqn.2016-06.io.spdk", "nqn.2016-06.io.spdk:a b", "nqn.2016-06.1o:x", "nqn.2014-08.org.nvmexpress.discovery")},
				{"serial_number", genValues("SPDK0001", "12345678901234567890", "123456789012345678901", "s\tn")},
				{"model_number", genValues("VDA_CONTROLLER", "0123456789012345678901234567890123456789", "01234567890123456789012345678901234567890")},
				{"max_namespaces", genValues(1, 32, 1024, 4294967295)},
				{"allow_any_host", genValues(false)},
				{"ana_reporting", genValues(false)},
				{"min_cntlid", genValues(2, 100, 65519, 65520, 65535, 65536)},
				{"max_cntlid", genValues(2, 99, 65519, 65520, 65535)},
				{"max_discard_size_kib", genValues(4, 1024)},
				{"max_write_zeroes_size_kib", genValues(2, 4, 6, 1024)},
				{"tgt_name", genValues("nvmf_tgt", "other")},
			},
		}},
		Between: func(m genMethod, params []genKV) []string {
			nqn := any(genNQN)
			for _, kv := range params {
				if kv.Key == "nqn" {
					nqn = kv.Value
				}
			}
			return []string{
				genLine("A", "nvmf_get_subsystems", nil),
				genLine("A", "nvmf_delete_subsystem", []genKV{{"nqn", nqn}}),
			}
		},
	}

	addr := []genKV{{"trtype", "TCP"}, {"adrfam", "IPv4"}, {"traddr", "127.0.0.1"}, {"trsvcid", "4420"}}
	addrs := []any{
		map[string]any{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4421"},
		map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": "4420"},
		map[string]any{"trtype": "TCP", "adrfam": "IPv6", "traddr": "127.0.0.1", "trsvcid": "4422"},
		map[string]any{"trtype": "RDMA", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4423"},
		map[string]any{"trtype": "TCP", "adrfam": "IPv4", "traddr": "10.255.255.1", "trsvcid": "4424"},
		map[string]any{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1"},
		map[string]any{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "x"},
		map[string]any{"trtype": "TCP", "adrfam": "IPv4", "trsvcid": "4425"},
		map[string]any{"trtype": "TCP", "adrfam": "xx", "traddr": "127.0.0.1", "trsvcid": "4425"},
		map[string]any{"adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4425"},
		map[string]any{"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": "4426", "x": 1},
	}
	listenAddr := genParam{"listen_address", genValues(addrs...)}
	anaStates := genParam{"ana_state", genValues("optimized", "non_optimized", "inaccessible", "INACCESSIBLE", "persistent_loss", "change")}
	hosts := genValues("nqn.2016-06.io.spdk:host1", "nqn.2014-08.org.nvmexpress:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "nqn.bad", "nqn.2016-06.io.spdk", "nqn.2014-08.org.nvmexpress.discovery")
	genTopics["nvmf_objects"] = genTopic{
		Seed: 16, N: 90,
		Setup: []string{
			`{"note": "generated: namespaces, listeners, hosts and ANA states with random valid and invalid parameters, on a subsystem (ANA reporting, 4 namespaces, one listener) re-created after every call"}`,
			genLine("A", "nvmf_create_transport", []genKV{{"trtype", "TCP"}}),
			genLine("A", "bdev_malloc_create", []genKV{{"name", "m0"}, {"num_blocks", 2048}, {"block_size", 512}, {"uuid", "11111111-2222-3333-4444-555555555555"}}),
			genLine("A", "bdev_malloc_create", []genKV{{"name", "m1"}, {"num_blocks", 2048}, {"block_size", 4096}}),
			genLine("A", "nvmf_create_subsystem", []genKV{{"nqn", genNQN}, {"ana_reporting", true}, {"max_namespaces", 4}}),
			genLine("A", "nvmf_subsystem_add_listener", []genKV{{"nqn", genNQN}, {"listen_address", genObj(addr)}}),
		},
		Methods: []genMethod{{
			Method: "nvmf_subsystem_add_ns", Weight: 3,
			Base: []genKV{{"nqn", genNQN}, {"namespace", map[string]any{"bdev_name": "m0"}}},
			Params: []genParam{
				{"nqn", genValues("nqn.2016-06.io.spdk:none", "nqn.2014-08.org.nvmexpress.discovery")},
				{"namespace", genValues(
					map[string]any{"bdev_name": "m1", "nsid": 4},
					map[string]any{"bdev_name": "m1", "nsid": 5},
					map[string]any{"bdev_name": "m0", "anagrpid": 2},
					map[string]any{"bdev_name": "m0", "anagrpid": 5},
					map[string]any{"bdev_name": "m0", "nsid": 2, "anagrpid": 1},
					map[string]any{"bdev_name": "11111111-2222-3333-4444-555555555555"},
					map[string]any{"bdev_name": "m0", "uuid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"},
					map[string]any{"bdev_name": "m0", "uuid": "bad"},
					map[string]any{"bdev_name": "m0", "nguid": "000102030405060708090a0b0c0d0e0f"},
					map[string]any{"bdev_name": "m0", "nguid": "0001"},
					map[string]any{"bdev_name": "m0", "eui64": "0102030405060708"},
					map[string]any{"bdev_name": "m0", "eui64": "01020304050607080"},
					map[string]any{"bdev_name": "m0", "ptpl_file": 3},
					map[string]any{"bdev_name": "none"},
					map[string]any{"nsid": 1},
					map[string]any{"bdev_name": "m0", "x": 1},
				)},
				{"tgt_name", genValues("nvmf_tgt", "other")},
			},
		}, {
			Method: "nvmf_subsystem_add_listener", Weight: 3,
			Base: []genKV{{"nqn", genNQN}, {"listen_address", genObj(addr)}},
			Params: []genParam{
				{"nqn", genValues("nqn.2016-06.io.spdk:none", "nqn.2014-08.org.nvmexpress.discovery")},
				listenAddr, anaStates,
				{"secure_channel", genValues(false)},
				{"tgt_name", genValues("nvmf_tgt", "other")},
			},
		}, {
			Method: "nvmf_subsystem_remove_listener",
			Base:   []genKV{{"nqn", genNQN}, {"listen_address", genObj(addr)}},
			Params: []genParam{
				{"nqn", genValues("nqn.2016-06.io.spdk:none")},
				listenAddr,
				{"tgt_name", genValues("nvmf_tgt", "other")},
			},
		}, {
			Method: "nvmf_subsystem_listener_set_ana_state", Weight: 2,
			Base: []genKV{{"nqn", genNQN}, {"listen_address", genObj(addr)}, {"ana_state", "non_optimized"}},
			Params: []genParam{
				{"nqn", genValues("nqn.2016-06.io.spdk:none")},
				listenAddr, anaStates,
				{"anagrpid", genValues(1, 4, 5)},
				{"tgt_name", genValues("nvmf_tgt", "other")},
			},
		}, {
			Method: "nvmf_subsystem_add_host", Weight: 2,
			Base: []genKV{{"nqn", genNQN}, {"host", "nqn.2016-06.io.spdk:host1"}},
			Params: []genParam{
				{"nqn", genValues("nqn.2016-06.io.spdk:none", "nqn.2014-08.org.nvmexpress.discovery")},
				{"host", hosts},
				{"psk", genValues()},
				{"tgt_name", genValues("nvmf_tgt", "other")},
			},
		}, {
			Method: "nvmf_subsystem_remove_host",
			Base:   []genKV{{"nqn", genNQN}, {"host", "nqn.2016-06.io.spdk:host1"}},
			Params: []genParam{{"nqn", genValues("nqn.2016-06.io.spdk:none")}, {"host", hosts}},
		}, {
			Method: "nvmf_subsystem_remove_ns",
			Base:   []genKV{{"nqn", genNQN}, {"nsid", 1}},
			Params: []genParam{{"nqn", genValues("nqn.2016-06.io.spdk:none")}, {"nsid", genValues(2, 4, 4294967295)}},
		}, {
			Method: "nvmf_subsystem_allow_any_host",
			Base:   []genKV{{"nqn", genNQN}, {"allow_any_host", true}},
			Params: []genParam{{"nqn", genValues("nqn.2016-06.io.spdk:none")}, {"allow_any_host", genValues(false)}},
		}, {
			Method: "nvmf_subsystem_get_listeners",
			Base:   []genKV{{"nqn", genNQN}},
			Params: []genParam{{"nqn", genValues("nqn.2016-06.io.spdk:none", "nqn.2014-08.org.nvmexpress.discovery")}, {"tgt_name", genValues("other")}},
		}},
		Between: func(m genMethod, _ []genKV) []string {
			out := []string{genLine("A", "nvmf_get_subsystems", []genKV{{"nqn", genNQN}})}
			if m.Method == "nvmf_subsystem_add_listener" || m.Method == "nvmf_subsystem_listener_set_ana_state" {
				out = append(out, genLine("A", "nvmf_subsystem_get_listeners", []genKV{{"nqn", genNQN}}))
			}
			return append(out,
				genLine("A", "nvmf_delete_subsystem", []genKV{{"nqn", genNQN}}),
				genLine("A", "nvmf_create_subsystem", []genKV{{"nqn", genNQN}, {"ana_reporting", true}, {"max_namespaces", 4}}),
				genLine("A", "nvmf_subsystem_add_listener", []genKV{{"nqn", genNQN}, {"listen_address", genObj(addr)}}),
			)
		},
	}
}

// genObj renders ordered pairs as a JSON object value.
func genObj(kvs []genKV) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}
