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
