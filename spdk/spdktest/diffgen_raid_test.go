package spdktest

import "strings"

// The raid topic's generated scenarios: bdev_raid_create with random valid
// and invalid parameters over a fixed set of malloc members (512- and
// 4096-byte blocks, one claimed by a passthru, one with metadata), and the
// other raid and passthru methods. Every raid and passthru a call may have
// made is deleted before the next call; members that may carry a fresh
// superblock are re-created, so every call starts from the same state.
func init() {
	members := []string{"m0", "m1", "m2", "k0", "k1"}
	setup := []string{`{"note": "generated: raid and passthru methods with random valid and invalid parameters; each call starts from the same members"}`}
	for _, m := range members {
		setup = append(setup, raidGenMalloc(m))
	}
	setup = append(setup,
		genLine("A", "bdev_malloc_create", []genKV{{"name", "claimed"}, {"num_blocks", 8192}, {"block_size", 512}}),
		genLine("A", "bdev_passthru_create", []genKV{{"name", "holder"}, {"base_bdev_name", "claimed"}}),
	)
	bases := []any{
		[]any{"m0"}, []any{"m0", "m0"}, []any{"m0", "nope"}, []any{"m0", "k0"}, []any{"k0", "k1"},
		[]any{"claimed", "m1"}, []any{"m0", "m1", "m2"}, []any{"m1", "md"}, []any{"holder", "m1"},
		"m0 m1", []any{1}, []any{nil}, []any{"m2", "m1", "m0", "k1"},
	}
	genTopics["raid"] = genTopic{
		Seed: 15, N: 170, Setup: setup,
		Methods: []genMethod{{
			Method: "bdev_raid_create", Weight: 8,
			Base: []genKV{{"name", "r"}, {"raid_level", "raid0"}, {"base_bdevs", []any{"m0", "m1"}}, {"strip_size_kb", 64}},
			Params: []genParam{
				{"name", genValues("r", "m0", strings.Repeat("n", 63), strings.Repeat("n", 64), "a b")},
				{"raid_level", genValues("raid1", "1", "concat", "RAID0", "0", "raid5f", "raid10", 0)},
				{"base_bdevs", genValues(bases...)},
				{"strip_size_kb", genValues(1, 2, 3, 4, 8, 48, 128, 1024, 4294967295, 2147483648)},
				{"uuid", genValues("3f2504e0-4f89-41d3-9a0c-0305e82c3301", "not-a-uuid", zeroUUID)},
				{"superblock", genValues(false)},
				{"strip_size", genValues(64)},
			},
		}, {
			Method: "bdev_raid_get_bdevs",
			Base:   []genKV{{"category", "all"}},
			Params: []genParam{{"category", genValues("online", "configuring", "offline", "ALL", "none")}},
		}, {
			Method: "bdev_raid_delete",
			Base:   []genKV{{"name", "r"}},
			Params: []genParam{{"name", genValues("m0", "holder")}},
		}, {
			Method: "bdev_raid_remove_base_bdev",
			Base:   []genKV{{"name", "m0"}},
			Params: []genParam{{"name", genValues("claimed", "holder", "nope")}},
		}, {
			Method: "bdev_passthru_create", Weight: 2,
			Base: []genKV{{"name", "p"}, {"base_bdev_name", "m0"}},
			Params: []genParam{
				{"name", genValues("p", "holder", "a b")},
				{"base_bdev_name", genValues("claimed", "holder", "nope", "md", "k0")},
				{"uuid", genValues("3f2504e0-4f89-41d3-9a0c-0305e82c3301", "not-a-uuid", zeroUUID)},
			},
		}, {
			Method: "bdev_passthru_delete",
			Base:   []genKV{{"name", "holder"}},
			Params: []genParam{{"name", genValues("p", "m0")}},
		}},
		Between: raidGenBetween(members),
	}
}

func raidGenMalloc(name string) string {
	bs, n := 512, 8192
	if strings.HasPrefix(name, "k") {
		bs, n = 4096, 1024
	}
	return genLine("A", "bdev_malloc_create", []genKV{{"name", name}, {"num_blocks", n}, {"block_size", bs}})
}

// raidGenBetween undoes what a generated call may have done.
func raidGenBetween(members []string) func(genMethod, []genKV) []string {
	return func(m genMethod, params []genKV) []string {
		get := func(key string) (any, bool) {
			for _, kv := range params {
				if kv.Key == key {
					return kv.Value, true
				}
			}
			return nil, false
		}
		var out []string
		switch m.Method {
		case "bdev_raid_create":
			if name, ok := get("name"); ok {
				if s, ok := name.(string); ok {
					out = append(out, genLine("A", "bdev_raid_delete", []genKV{{"name", s}}))
				}
			}
			if sb, _ := get("superblock"); sb == true {
				// The members may carry the raid's superblock now: fresh ones.
				for _, n := range members {
					out = append(out, genLine("A", "bdev_malloc_delete", []genKV{{"name", n}}), raidGenMalloc(n))
				}
			}
		case "bdev_passthru_create":
			if name, ok := get("name"); ok {
				if s, ok := name.(string); ok && s != "holder" {
					out = append(out, genLine("A", "bdev_passthru_delete", []genKV{{"name", s}}))
				}
			}
		case "bdev_passthru_delete", "bdev_raid_remove_base_bdev":
			if name, _ := get("name"); name == "holder" {
				out = append(out, genLine("A", "bdev_passthru_create", []genKV{{"name", "holder"}, {"base_bdev_name", "claimed"}}))
			}
		}
		return out
	}
}
