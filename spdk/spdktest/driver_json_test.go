package spdktest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// nvmeDriverJSON writes the bytes the obj tree of nvmeDriver writes, for
// every kind of NVMe bdev a node lists: a fabric path without ANA, with
// ANA reporting in each state, two paths of one controller (multipath),
// a local PCIe device, and a path whose target is gone.
func TestNVMeDriverJSONAsObj(t *testing.T) {
	const host = "nqn.2016-06.io.vda:fe-1"
	nqn := "nqn.2016-06.io.vda:exp"
	dn := NewServer(t)
	plainNQN, plainPort := diskNode(t, dn, dialRaw(t, dn.SockPath()), "p", host)
	// Two targets exporting the same subsystem with ANA reporting, on
	// disjoint controller ID ranges.
	var targets []*Server
	var las []map[string]any
	var ports []string
	for i, r := range [][2]int{{1, 1000}, {1001, 2000}} {
		s := NewServer(t)
		rc := dialRaw(t, s.SockPath())
		port := reservedPort(t, s)
		la := map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "adrfam": "ipv4", "trsvcid": port}
		rc.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
		rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 256, "uuid": "11111111-2222-3333-4444-555555555555"})
		rc.ok("nvmf_create_subsystem", map[string]any{"nqn": nqn, "ana_reporting": true, "min_cntlid": r[0], "max_cntlid": r[1],
			"serial_number": "SN" + string(rune('0'+i)), "model_number": `VDA "exp"`})
		rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": nqn, "namespace": map[string]any{"bdev_name": "m"}})
		rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": la, "ana_state": "non_optimized"})
		rc.ok("nvmf_subsystem_add_host", map[string]any{"nqn": nqn, "host": host})
		targets, las, ports = append(targets, s), append(las, la), append(ports, port)
	}
	srv := NewServer(t, WithNVMeDevice(NVMeDevice{TrAddr: "0000:81:00.0", SizeBytes: 32 << 20}))
	rc := dialRaw(t, srv.SockPath())
	attachTo := func(name, port, subnqn string, multipath bool) {
		p := map[string]any{"name": name, "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port,
			"subnqn": subnqn, "hostnqn": host}
		if multipath {
			p["multipath"] = "multipath"
		}
		rc.ok("bdev_nvme_attach_controller", p)
	}
	attachTo("plain", plainPort, plainNQN, false)
	attachTo("mp", ports[0], nqn, true)
	attachTo("mp", ports[1], nqn, true)
	rc.ok("bdev_nvme_attach_controller", map[string]any{"name": "local", "trtype": "PCIe", "traddr": "0000:81:00.0"})

	var seen string // every driver part compared
	check := func(stage string) {
		t.Helper()
		srv.mu.Lock()
		st := srv.cur.st
		srv.mu.Unlock()
		st.mu.Lock()
		defer st.mu.Unlock()
		var n int
		for _, b := range st.bdevs {
			if b.driverJSON == nil {
				continue
			}
			n++
			want, err := appendValue(nil, b.driver())
			require.NoError(t, err)
			got, err := b.driverJSON.appendJSON(nil)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "%s: %s", stage, b.name)
			seen += string(got)
			// And the listing writes it so: the listing's element is the
			// same as the bdev's own encoding.
			bj, err := marshal(b.json())
			require.NoError(t, err)
			lj := b.listJSON()
			listed, err := lj.appendJSON(nil)
			require.NoError(t, err)
			require.Equal(t, string(bj), string(listed), "%s: %s", stage, b.name)
			marshalled, err := marshal(lj)
			require.NoError(t, err)
			require.Equal(t, string(bj), string(marshalled), "%s: %s through encoding/json", stage, b.name)
		}
		require.Equal(t, 3, n, "%s: plainn1, mpn1 and localn1", stage)
	}
	check("attached")
	for _, ana := range []string{"optimized", "inaccessible"} {
		for i, s := range targets {
			dialRaw(t, s.SockPath()).ok("nvmf_subsystem_listener_set_ana_state", map[string]any{"nqn": nqn, "listen_address": las[i], "ana_state": ana})
		}
		check("ana " + ana)
	}
	targets[0].Crash()
	check("a path's target gone")
	for _, want := range []string{`"pci_address":"0000:81:00.0"`, `"ana_state":"non_optimized"`, `"ana_state":"optimized"`,
		`"ana_state":"inaccessible"`, `"ana_reporting":true`, `"ana_reporting":false`, `"cntlid":1001`, `}},{"trid"`} {
		require.Contains(t, seen, want, "the kinds compared")
	}
}

// The raid appenders write the bytes infoJSON's tree writes, in
// bdev_raid_get_bdevs and in a raid bdev's driver part: online raid0 and
// raid1 with a superblock, a raid configuring for a member that is not
// there (a named member, and one found by its superblock alone), and a
// raid1 that lost a member.
func TestRaidInfoAsObj(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	for _, m := range []string{"m0", "m1", "m2", "m3", "m4", "m5"} {
		rc.ok("bdev_malloc_create", map[string]any{"name": m, "num_blocks": 8192, "block_size": 512})
	}
	for _, m := range []string{"m2", "m3"} {
		rc.ok("bdev_passthru_create", map[string]any{"name": "p" + m, "base_bdev_name": m})
	}
	rc.ok("bdev_raid_create", map[string]any{"name": "r0", "raid_level": "raid0", "strip_size_kb": 64, "base_bdevs": []string{"m0", "m1"}})
	rc.ok("bdev_raid_create", map[string]any{"name": "sb", "raid_level": "raid1", "base_bdevs": []string{"pm2", "pm3"}, "superblock": true})
	rc.ok("bdev_raid_create", map[string]any{"name": "late", "raid_level": "concat", "strip_size_kb": 4, "base_bdevs": []string{"m4", "nothere"}})
	rc.ok("bdev_raid_create", map[string]any{"name": "deg", "raid_level": "raid1", "base_bdevs": []string{"m5", "m0x"}})

	check := func(stage string, want ...string) {
		t.Helper()
		srv.mu.Lock()
		st := srv.cur.st
		srv.mu.Unlock()
		var ref []obj
		var drivers [][3]string // name, the tree's bytes, the appender's
		func() {
			st.mu.Lock()
			defer st.mu.Unlock()
			for _, r := range st.raids {
				ref = append(ref, append(obj{{"name", r.name}, {"uuid", r.uuidOrZero()}}, r.infoJSON()...))
				if r.bdev != nil && r.bdev.driverJSON != nil {
					old, err := appendValue(nil, r.bdev.driver())
					require.NoError(t, err)
					got, err := r.bdev.driverJSON.appendJSON(nil)
					require.NoError(t, err)
					drivers = append(drivers, [3]string{r.name, string(old), string(got)})
				}
			}
		}()
		for _, d := range drivers {
			require.Equal(t, d[1], d[2], "%s: %s", stage, d[0])
		}
		if ref == nil {
			ref = []obj{}
		}
		wantList, err := appendValue(nil, ref)
		require.NoError(t, err)
		listed := rc.ok("bdev_raid_get_bdevs", map[string]any{"category": "all"})
		require.Equal(t, string(wantList), string(listed), stage)
		for _, w := range want {
			require.Contains(t, string(listed), w, stage)
		}
		require.NotEmpty(t, drivers, stage)
	}
	check("created", `"state":"configuring"`, `"name":"nothere"`, `"superblock":true`, `"state":"online"`)
	rc.ok("bdev_raid_remove_base_bdev", map[string]any{"name": "pm3"})
	check("a member removed")
	rc.ok("bdev_raid_delete", map[string]any{"name": "sb"})
	rc.ok("bdev_passthru_delete", map[string]any{"name": "pm2"})
	rc.ok("bdev_passthru_create", map[string]any{"name": "pm2", "base_bdev_name": "m2"})
	check("found by its superblock", `"name":null`)
	require.Equal(t, "[]", string(dialRaw(t, NewServer(t).SockPath()).ok("bdev_raid_get_bdevs", map[string]any{"category": "all"})))
}
