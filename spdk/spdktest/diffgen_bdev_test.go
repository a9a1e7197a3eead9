package spdktest

func init() {
	// Generic bdev methods: QoS limits, listings, iostat, histograms and aio
	// creation with random valid and invalid parameters.
	genTopics["bdev"] = genTopic{
		Seed: 17, N: 80,
		Setup: []string{
			genLine("A", "bdev_malloc_create", []genKV{{"name", "m"}, {"num_blocks", 8192}, {"block_size", 512}}),
		},
		Methods: []genMethod{{
			Method: "bdev_set_qos_limit",
			Base:   []genKV{{"name", "m"}, {"rw_ios_per_sec", 2000}},
			Params: []genParam{
				{"name", genValues("nope")},
				{"rw_ios_per_sec", genValues(1, 999, 1000, 1001, 25000, uint64(18446744073709551615))},
				{"rw_mbytes_per_sec", genValues(1, 10, 1000000, uint64(18446744073709551615))},
				{"r_mbytes_per_sec", genValues(1, 10)},
				{"w_mbytes_per_sec", genValues(1, 10)},
			},
			Weight: 3,
		}, {
			Method: "bdev_get_bdevs",
			Base:   []genKV{{"name", "m"}},
			Params: []genParam{
				{"name", genValues("nope")},
				{"timeout", []any{genOmit, nil, 0, 1, 20, -1, "x", 1.5, true}},
			},
		}, {
			Method: "bdev_get_iostat",
			Base:   []genKV{{"name", "m"}},
			Params: []genParam{
				{"name", genValues("nope")},
				{"per_channel", genValues(false)},
			},
		}, {
			Method: "bdev_enable_histogram",
			Base:   []genKV{{"name", "m"}, {"enable", true}},
			Params: []genParam{
				{"name", genValues("nope")},
				{"enable", genValues(false)},
			},
		}, {
			Method: "bdev_aio_create",
			Base:   []genKV{{"name", "a"}, {"filename", "/aio/f"}, {"block_size", 512}},
			Params: []genParam{
				{"name", genValues("m", "b/c")},
				{"filename", []any{"/aio/g", "/nonexistent/x", nil, 1, genOmit}},
				{"block_size", genValues(512, 1024, 4096, 520, 256, 8192)},
				{"readonly", genValues(false, true)},
				{"fallocate", genValues(false, true)},
			},
			Weight: 2,
		}},
		Between: func(m genMethod, params []genKV) []string {
			switch m.Method {
			case "bdev_set_qos_limit":
				return []string{genLine("A", "bdev_get_bdevs", []genKV{{"name", "m"}})}
			case "bdev_aio_create":
				name := genString(params, "name")
				if name == "" || name == "m" {
					return nil
				}
				return []string{
					genLine("A", "bdev_get_bdevs", []genKV{{"name", name}}),
					genLine("A", "bdev_aio_delete", []genKV{{"name", name}}),
				}
			}
			return nil
		},
	}
}
