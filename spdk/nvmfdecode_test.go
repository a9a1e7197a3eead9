package spdk

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

var subsystemSeeds = []string{
	`[]`, `null`, `[{}]`, `[null]`,
	`[{"nqn":"nqn.2014-08.org.nvmexpress.discovery","subtype":"Discovery","listen_addresses":[],"allow_any_host":true,"hosts":[]}]`,
	`[{"nqn":"nqn.2016-06.io.vda:exp-1","subtype":"NVMe","listen_addresses":[{"transport":"TCP","trtype":"TCP","adrfam":"IPv4","traddr":"10.0.0.7","trsvcid":"4430"}],"allow_any_host":false,"hosts":[{"nqn":"nqn.2016-06.io.vda:host-1"}],"serial_number":"00000000000000000001","model_number":"VDA_EXPORTER","max_namespaces":32,"min_cntlid":1,"max_cntlid":65519,"namespaces":[{"nsid":1,"bdev_name":"b","name":"b","nguid":"00","eui64":"01","uuid":"u","anagrpid":1}]}]`,
	`[{"nqn":"a","namespaces":[{"nsid":1,"ptpl_file":"x"}],"ana_reporting":true}]`,
	`[{"nqn":"a","nqn":"b"}]`, `[{"NQN":"a"}]`, `[{"hosts":null}]`, `[{"hosts":[{"nqn":"\u0061"}]}]`, `[{"max_cntlid":65536}]`,
	`[{"min_cntlid":-1}]`, `[{"namespaces":[{"nsid":1.5}]}]`, `[{"listen_addresses":[{"trtype":1}]}]`, `[{}`, `[{}]]`,
}

var controllerSeeds = []string{
	`[]`, `null`, `[{}]`, `[null]`,
	`[{"name":"vda:003-x","ctrlrs":[{"state":"enabled","trid":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.1","trsvcid":"4420","subnqn":"nqn.x"},"cntlid":1,"host":{"nqn":"nqn.h","addr":"","svcid":""}}]}]`,
	`[{"name":"n","ctrlrs":[]},{"name":"m","ctrlrs":[{"state":"failed","cntlid":65535}]}]`,
	`[{"name":"n","ctrlrs":[{"cntlid":65536}]}]`, `[{"name":"n","ctrlrs":null}]`, `[{"Name":"n"}]`,
	`[{"name":"n","ctrlrs":[{"host":{"nqn":"a","nqn":"b"}}]}]`, `[{"name":"n","other":{"a":[1,2]}}]`,
}

func FuzzDecodeSubsystems(f *testing.F) {
	for _, s := range subsystemSeeds {
		f.Add([]byte(s))
	}
	for _, r := range recordedResults(f, "nvmf_get_subsystems") {
		f.Add(r)
	}
	f.Add(listingSubsystems(3))
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeList(t, b, (*fastParser).subsystem) })
}

func FuzzDecodeControllers(f *testing.F) {
	for _, s := range controllerSeeds {
		f.Add([]byte(s))
	}
	for _, r := range recordedResults(f, "bdev_nvme_get_controllers") {
		f.Add(r)
	}
	f.Add(listingControllers(3))
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeList(t, b, (*fastParser).nvmeController) })
}

func FuzzDecodeRaids(f *testing.F) {
	for _, r := range recordedResults(f, "bdev_raid_get_bdevs") {
		f.Add(r)
	}
	f.Add(listingRaids(3))
	f.Add([]byte(`[{"name":"r","base_bdevs_list":[{"name":null}]}]`))
	f.Add([]byte(`[{"name":"r","uuid":"a","uuid":"b","base_bdevs_list":[{"name":"x","name":null}]}]`))
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeList(t, b, (*fastParser).raidBdev) })
}

func FuzzDecodeLvols(f *testing.F) {
	for _, r := range recordedResults(f, "bdev_lvol_get_lvols") {
		f.Add(r)
	}
	f.Add(listingLvols(3))
	f.Add([]byte(`[{"alias":"a","alias":"b","lvs":null,"is_clone":null},{"lvs":{"name":"x","uuid":1}}]`))
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeList(t, b, (*fastParser).lvol) })
}

func FuzzDecodeLvstores(f *testing.F) {
	for _, r := range recordedResults(f, "bdev_lvol_get_lvstores") {
		f.Add(r)
	}
	f.Add([]byte(`[{"uuid":"u","name":"lvs","base_bdev":"pd0","total_data_clusters":31,"free_clusters":29,"block_size":4096,"cluster_size":4194304}]`))
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeList(t, b, (*fastParser).lvstore) })
}

// Every listing reply of real SPDK v24.01 (the recordings) and of the benchmarks' listings
// takes the one-pass decode, and the seeds decode as encoding/json does.
func TestDecodeListingsTakeSPDKReplies(t *testing.T) {
	for _, tc := range []struct {
		method string
		seeds  []string
		taken  []string
		bench  []byte
		check  func(t *testing.T, b []byte) (taken bool)
	}{
		{"nvmf_get_subsystems", subsystemSeeds, subsystemSeeds[4:7], listingSubsystems(3), func(t *testing.T, b []byte) bool {
			checkDecodeList(t, b, (*fastParser).subsystem)
			_, ok := decodeList(b, (*fastParser).subsystem)
			return ok
		}},
		{"bdev_nvme_get_controllers", controllerSeeds, controllerSeeds[4:6], listingControllers(3), func(t *testing.T, b []byte) bool {
			checkDecodeList(t, b, (*fastParser).nvmeController)
			_, ok := decodeList(b, (*fastParser).nvmeController)
			return ok
		}},
		{"bdev_lvol_get_lvols", nil, nil, listingLvols(3), func(t *testing.T, b []byte) bool {
			checkDecodeList(t, b, (*fastParser).lvol)
			_, ok := decodeList(b, (*fastParser).lvol)
			return ok
		}},
		{"bdev_lvol_get_lvstores", nil, nil, []byte(`[{"uuid":"u","name":"lvs","cluster_size":1}]`), func(t *testing.T, b []byte) bool {
			checkDecodeList(t, b, (*fastParser).lvstore)
			_, ok := decodeList(b, (*fastParser).lvstore)
			return ok
		}},
		{"bdev_raid_get_bdevs", nil, nil, listingRaids(3), func(t *testing.T, b []byte) bool {
			checkDecodeList(t, b, (*fastParser).raidBdev)
			_, ok := decodeList(b, (*fastParser).raidBdev)
			return ok
		}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			for _, r := range recordedResults(t, tc.method) {
				require.True(t, tc.check(t, r), "%s", r)
			}
			for _, s := range tc.seeds {
				tc.check(t, []byte(s))
			}
			for _, s := range tc.taken {
				require.True(t, tc.check(t, []byte(s)), s)
			}
			require.True(t, tc.check(t, tc.bench))
		})
	}
}

// A member repeated with a scalar overwrites the first, as in encoding/json (SPDK v24.01
// writes a raid's uuid twice in bdev_raid_get_bdevs); repeated with null, an object or an
// array it is encoding/json's to merge.
func TestDecodeRepeatedMembers(t *testing.T) {
	for _, tc := range []struct {
		in    string
		taken bool
	}{
		{`[{"name":"r","uuid":"a","uuid":"b","strip_size_kb":1,"strip_size_kb":2,"superblock":true,"superblock":false}]`, true},
		{`[{"name":"r","uuid":"a","uuid":null}]`, false},
		{`[{"name":"r","base_bdevs_list":[{"name":"x"}],"base_bdevs_list":[]}]`, false},
		{`[{"name":"r","base_bdevs_list":[],"base_bdevs_list":"x"}]`, false},
	} {
		checkDecodeList(t, []byte(tc.in), (*fastParser).raidBdev)
		_, ok := decodeList([]byte(tc.in), (*fastParser).raidBdev)
		require.Equal(t, tc.taken, ok, tc.in)
	}
}

// The small results (names, namespace ids, true) decode as encoding/json decodes them, into
// fresh values and into values that hold something already.
func FuzzDecodeSmall(f *testing.F) {
	for _, s := range []string{`"Malloc0"`, ` "a" `, `null`, `"\u0041"`, `["ben1"]`, `[]`, `["a",null]`, `[1]`,
		`1`, `0`, `01`, `4294967296`, `-1`, `1.0`, `true`, `false`, `tru`, `"é"`, "\"\xff\"", `"a" "b"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(got, want any) {
			gotErr, wantErr := decodeResult(b, got), json.Unmarshal(b, want)
			require.Equal(t, wantErr, gotErr, "%q", b)
			require.Equal(t, want, got, "%q", b)
		}
		check(new(string), new(string))
		s1, s2 := "old", "old"
		check(&s1, &s2)
		check(new([]string), new([]string))
		l1, l2 := []string{"x", "y"}, []string{"x", "y"}
		check(&l1, &l2)
		check(new(uint32), new(uint32))
		u1, u2 := uint32(7), uint32(7)
		check(&u1, &u2)
		check(new(bool), new(bool))
		b1, b2 := true, true
		check(&b1, &b2)
	})
}
