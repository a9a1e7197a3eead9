package spdktest

func init() {
	genTopics["malloc"] = genTopic{
		Seed: 1, N: 40,
		Methods: []genMethod{{
			Method: "bdev_malloc_create",
			Base:   []genKV{{"name", "m"}, {"num_blocks", 2048}, {"block_size", 512}},
			Params: []genParam{
				{"name", genValues("m0", "a/b", "with space")},
				{"num_blocks", genValues(1, 8, 4095)},
				{"block_size", genValues(512, 4096, 520, 1024, 8192, 256)},
				{"md_size", genValues(8, 16, 64, 128)},
				{"md_interleave", genValues(false)},
				{"dif_type", genValues(2, 3, 4)},
				{"uuid", genValues("00000000-0000-0000-0000-000000000000", "not-a-uuid", "3f2504e0-4f89-41d3-9a0c-0305e82c3301")},
				{"optimal_io_boundary", genValues(16)},
			},
		}},
		Between: func(m genMethod, params []genKV) []string {
			name := "m"
			for _, kv := range params {
				if s, ok := kv.Value.(string); ok && kv.Key == "name" {
					name = s
				}
			}
			return []string{genLine("A", "bdev_malloc_delete", []genKV{{"name", name}})}
		},
	}
}
