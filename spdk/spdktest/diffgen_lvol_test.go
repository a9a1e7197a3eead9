package spdktest

// genString returns the string value of key in params, or "".
func genString(params []genKV, key string) string {
	for _, kv := range params {
		if s, ok := kv.Value.(string); ok && kv.Key == key {
			return s
		}
	}
	return ""
}

func init() {
	// Lvstores: random cluster sizes, clear methods and metadata ratios on
	// bases of odd sizes; every call is followed by the listing (cluster
	// counts) and the lvstore's deletion.
	genTopics["lvol_lvs"] = genTopic{
		Seed: 15, N: 60,
		Setup: []string{
			genLine("A", "bdev_malloc_create", []genKV{{"name", "m"}, {"num_blocks", 100003}, {"block_size", 512}}),
			genLine("A", "bdev_malloc_create", []genKV{{"name", "m4k"}, {"num_blocks", 7777}, {"block_size", 4096}}),
		},
		Methods: []genMethod{{
			Method: "bdev_lvol_create_lvstore",
			Base:   []genKV{{"bdev_name", "m"}, {"lvs_name", "lvs"}},
			Params: []genParam{
				{"bdev_name", genValues("m4k", "nope")},
				{"cluster_sz", genValues(4096, 8192, 16384, 20480, 65536, 1048576, 3145728, 4194304, 5242880, 1000, 2048, 4097, 33554432)},
				{"cluster_sz", []any{4096, 8192, 12288, 24576, 131072, 1048576, 2097152, 6291456}},
				{"clear_method", genValues("none", "unmap", "write_zeroes", "NONE", "Unmap", "write-zeroes")},
				{"num_md_pages_per_cluster_ratio", genValues(1, 2, 50, 100, 200, 1000, 4294967295)},
				{"lvs_name", genValues("l", "a/b", "with space")},
			},
			Weight: 3,
		}, {
			Method: "bdev_lvol_get_lvstores",
			Base:   []genKV{{"lvs_name", "lvs"}},
			Params: []genParam{
				{"lvs_name", genValues("nope")},
				{"uuid", genValues("00000000-0000-0000-0000-000000000000", "nope")},
			},
		}},
		Between: func(m genMethod, params []genKV) []string {
			if m.Method != "bdev_lvol_create_lvstore" {
				return nil
			}
			out := []string{genLine("A", "bdev_lvol_get_lvstores", nil)}
			if name := genString(params, "lvs_name"); name != "" {
				out = append(out, genLine("A", "bdev_lvol_delete_lvstore", []genKV{{"lvs_name", name}}))
			}
			return out
		},
	}
	// Lvols: random sizes, provisioning and clear methods in one lvstore of
	// 1 MiB clusters; each created lvol is listed and deleted again.
	genTopics["lvol"] = genTopic{
		Seed: 16, N: 80,
		Setup: []string{
			genLine("A", "bdev_malloc_create", []genKV{{"name", "m"}, {"num_blocks", 131072}, {"block_size", 512}}),
			genLine("A", "bdev_lvol_create_lvstore", []genKV{{"bdev_name", "m"}, {"lvs_name", "lvs"}, {"cluster_sz", 1048576}}),
			genLine("A", "bdev_lvol_create", []genKV{{"lvs_name", "lvs"}, {"lvol_name", "keep"}, {"size_in_mib", 8}}),
			genLine("A", "bdev_lvol_snapshot", []genKV{{"lvol_name", "lvs/keep"}, {"snapshot_name", "snap"}}),
		},
		Methods: []genMethod{{
			Method: "bdev_lvol_create",
			Base:   []genKV{{"lvs_name", "lvs"}, {"lvol_name", "v"}, {"size_in_mib", 2}},
			Params: []genParam{
				{"lvs_name", genValues("nope")},
				{"uuid", genValues("00000000-0000-0000-0000-000000000000", "nope")},
				{"lvol_name", genValues("keep", "snap", "a/b", "w s", "0123456789012345678901234567890123456789012345678901234567890123")},
				{"size_in_mib", genValues(1, 3, 17, 40, 100, 1000000)},
				{"size", genValues(1, 512, 1048576, 1048577, 10485760, 1073741824)},
				{"thin_provision", genValues(false)},
				{"clear_method", genValues("none", "unmap", "write_zeroes", "UNMAP", "zero")},
			},
			Weight: 4,
		}, {
			Method: "bdev_lvol_resize",
			Base:   []genKV{{"name", "lvs/keep"}, {"size_in_mib", 8}},
			Params: []genParam{
				{"name", genValues("lvs/snap", "lvs/nope", "m")},
				{"size_in_mib", genValues(1, 4, 9, 16, 200, 1000000)},
				{"size", genValues(1, 4194304, 9437184, 1073741824)},
			},
		}, {
			Method: "bdev_lvol_snapshot",
			Base:   []genKV{{"lvol_name", "lvs/keep"}, {"snapshot_name", "s"}},
			Params: []genParam{
				{"lvol_name", genValues("lvs/snap", "lvs/nope", "m")},
				{"snapshot_name", genValues("keep", "snap", "a/b")},
			},
		}, {
			Method: "bdev_lvol_clone",
			Base:   []genKV{{"snapshot_name", "lvs/snap"}, {"clone_name", "cl"}},
			Params: []genParam{
				{"snapshot_name", genValues("lvs/keep", "lvs/nope", "m")},
				{"clone_name", genValues("keep", "snap", "a/b")},
			},
		}},
		Between: func(m genMethod, params []genKV) []string {
			var name string
			switch m.Method {
			case "bdev_lvol_create":
				name = genString(params, "lvol_name")
			case "bdev_lvol_snapshot":
				name = genString(params, "snapshot_name")
			case "bdev_lvol_clone":
				name = genString(params, "clone_name")
			default:
				return []string{genLine("A", "bdev_lvol_get_lvstores", nil)}
			}
			if name == "" || name == "keep" || name == "snap" {
				return []string{genLine("A", "bdev_lvol_get_lvstores", nil)}
			}
			return []string{
				genLine("A", "bdev_get_bdevs", []genKV{{"name", "lvs/" + name}}),
				genLine("A", "bdev_lvol_get_lvstores", nil),
				genLine("A", "bdev_lvol_delete", []genKV{{"name", "lvs/" + name}}),
			}
		},
	}
}
