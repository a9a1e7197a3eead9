package spdktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reservedPort reserves a loopback port for srv's NVMe-oF listeners.
func reservedPort(t testing.TB, srv *Server) string {
	t.Helper()
	trid, err := srv.Reserve("127.0.0.1")
	require.NoError(t, err)
	return trid.TrSvcID
}

// diskNode exports a 96 MiB thick lvol of a 128 MiB malloc of srv to
// hostNQN and returns the subsystem NQN and the port.
func diskNode(t *testing.T, srv *Server, rc *rawConn, id, hostNQN string) (string, string) {
	t.Helper()
	port := reservedPort(t, srv)
	nqn := "nqn.2016-06.io.vda:be-" + id
	rc.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	rc.ok("bdev_malloc_create", map[string]any{"name": "pd-" + id, "block_size": 4096, "num_blocks": 32768})
	rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "pd-" + id, "lvs_name": "lvs-" + id, "clear_method": "none"})
	rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "lvs-" + id, "lvol_name": id, "size_in_mib": 96})
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": nqn, "serial_number": "SN" + id, "model_number": "VDA_CONTROLLER"})
	rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": nqn, "namespace": map[string]any{"bdev_name": "lvs-" + id + "/" + id}})
	rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": port}})
	rc.ok("nvmf_subsystem_add_host", map[string]any{"nqn": nqn, "host": hostNQN})
	return nqn, port
}

func attach(rc *rawConn, name, port, nqn, host string) []string {
	var names []string
	res := rc.ok("bdev_nvme_attach_controller", map[string]any{
		"name": name, "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port, "subnqn": nqn, "hostnqn": host,
	})
	_ = json.Unmarshal(res, &names)
	return names
}

// controller builds raid0 over the attached VDs, passthru and lvstore/lvol
// on top when create is set, or examines to find them again.
func controller(t *testing.T, rc *rawConn, order []string, create bool) {
	t.Helper()
	rc.ok("bdev_raid_create", map[string]any{"name": "raid", "raid_level": "raid0", "strip_size_kb": 64, "base_bdevs": order})
	rc.ok("bdev_passthru_create", map[string]any{"name": "agg", "base_bdev_name": "raid"})
	if create {
		rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "agg", "lvs_name": "da", "clear_method": "none"})
		rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "da", "lvol_name": "main", "size_in_mib": 64, "thin_provision": true})
		return
	}
	rc.ok("bdev_examine", map[string]any{"name": "agg"})
	rc.ok("bdev_wait_for_examine", nil)
}

func TestDataSurvivesControllerFailover(t *testing.T) {
	const fe1, fe2 = "nqn.2016-06.io.vda:fe-1", "nqn.2016-06.io.vda:fe-2"
	a, b := NewServer(t), NewServer(t)
	ra, rb := dialRaw(t, a.SockPath()), dialRaw(t, b.SockPath())
	nqnA, portA := diskNode(t, a, ra, "a", fe1)
	nqnB, portB := diskNode(t, b, rb, "b", fe1)

	c := NewServer(t, WithWaitForRPC())
	rcC := dialRaw(t, c.SockPath())
	rcC.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
	rcC.ok("framework_start_init", nil)
	require.Equal(t, []string{"va1n1"}, attach(rcC, "va1", portA, nqnA, fe1))
	require.Equal(t, []string{"vb1n1"}, attach(rcC, "vb1", portB, nqnB, fe1))
	controller(t, rcC, []string{"va1n1", "vb1n1"}, true)
	lvs := rcC.ok("bdev_lvol_get_lvstores", map[string]any{"lvs_name": "da"})
	require.Contains(t, string(lvs), `"total_data_clusters":47`) // 192 MiB of raid0 minus metadata
	pattern := make([]byte, 256<<10)
	for i := range pattern {
		pattern[i] = byte(i*7 + i/4096)
	}
	_, err := c.bdevDevice(t, "da/main").WriteAt(pattern, 1<<20)
	require.NoError(t, err)
	var stats struct{ Bdevs []map[string]any }
	require.NoError(t, json.Unmarshal(ra.ok("bdev_get_iostat", map[string]any{"name": "lvs-a/a"}), &stats))
	require.NotZero(t, stats.Bdevs[0]["bytes_written"], "I/O through the fabric is counted on the disk node")

	// C dies; A and B switch their allow-lists to D (remove_host drops C).
	c.Crash()
	for _, x := range []struct {
		rc  *rawConn
		nqn string
	}{{ra, nqnA}, {rb, nqnB}} {
		x.rc.ok("nvmf_subsystem_add_host", map[string]any{"nqn": x.nqn, "host": fe2})
		x.rc.ok("nvmf_subsystem_remove_host", map[string]any{"nqn": x.nqn, "host": fe1})
	}
	d := NewServer(t, WithWaitForRPC())
	rcD := dialRaw(t, d.SockPath())
	rcD.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
	rcD.ok("framework_start_init", nil)
	rcD.fails(-32602, "bdev_nvme_attach_controller", map[string]any{"name": "x", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": portA, "subnqn": nqnA, "hostnqn": fe1})
	attach(rcD, "va1", portA, nqnA, fe2)
	attach(rcD, "vb1", portB, nqnB, fe2)

	// The wrong member order must not find the array's lvstore.
	controller(t, rcD, []string{"vb1n1", "va1n1"}, false)
	rcD.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"lvs_name": "da"})
	rcD.ok("bdev_passthru_delete", map[string]any{"name": "agg"})
	rcD.ok("bdev_raid_delete", map[string]any{"name": "raid"})

	rcD.ok("bdev_raid_create", map[string]any{"name": "raid", "raid_level": "raid0", "strip_size_kb": 64, "base_bdevs": []string{"va1n1", "vb1n1"}})
	rcD.ok("bdev_passthru_create", map[string]any{"name": "agg", "base_bdev_name": "raid"})
	rcD.fails(-17, "bdev_examine", map[string]any{"name": "agg"}) // examined already; SPDK re-examines the known name itself
	rcD.ok("bdev_wait_for_examine", nil)
	var before, after []lvstoreJSON
	require.NoError(t, json.Unmarshal(lvs, &before))
	require.NoError(t, json.Unmarshal(rcD.ok("bdev_lvol_get_lvstores", map[string]any{"lvs_name": "da"}), &after))
	require.Equal(t, before[0].UUID, after[0].UUID)
	require.Equal(t, before[0].FreeClusters-1, after[0].FreeClusters, "the write allocated one cluster of the thin lvol")
	got := make([]byte, len(pattern))
	_, err = d.bdevDevice(t, "da/main").ReadAt(got, 1<<20)
	require.NoError(t, err)
	require.True(t, bytes.Equal(pattern, got), "data written through C reads back through D")
}

func TestRemoveHostDropsConnectionAndPathFails(t *testing.T) {
	const host = "nqn.2016-06.io.vda:fe-1"
	a := NewServer(t)
	ra := dialRaw(t, a.SockPath())
	nqn, port := diskNode(t, a, ra, "a", host)
	c := NewServer(t)
	rc := dialRaw(t, c.SockPath())
	attach(rc, "v", port, nqn, host)
	var ctrls []ctrlrJSON
	require.NoError(t, json.Unmarshal(ra.ok("nvmf_subsystem_get_controllers", map[string]any{"nqn": nqn}), &ctrls))
	require.Len(t, ctrls, 1)
	require.Equal(t, host, ctrls[0].HostNQN)
	ra.ok("nvmf_subsystem_remove_host", map[string]any{"nqn": nqn, "host": host})
	ra.fails(-32603, "nvmf_subsystem_remove_host", map[string]any{"nqn": nqn, "host": host})
	require.Eventually(t, func() bool {
		return strings.Contains(string(rc.ok("bdev_nvme_get_controllers", map[string]any{"name": "v"})), `"state":"failed"`)
	}, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, "[]", string(ra.ok("nvmf_subsystem_get_controllers", map[string]any{"nqn": nqn})))
	_, err := c.bdevDevice(t, "vn1").ReadAt(make([]byte, 4096), 0)
	require.Error(t, err, "I/O fails fast on a failed path")
	var st struct{ Bdevs []map[string]any }
	require.NoError(t, json.Unmarshal(rc.ok("bdev_get_iostat", map[string]any{"name": "vn1"}), &st))
	require.Contains(t, fmt.Sprint(st.Bdevs[0]["io_error"]), "failed")
}

func TestMultipathNeedsDistinctCntlids(t *testing.T) {
	const host = "nqn.2016-06.io.vda:host-h1"
	nqn := "nqn.2016-06.io.vda:exp"
	mk := func(min, max int) (*Server, string) {
		s := NewServer(t)
		rc := dialRaw(t, s.SockPath())
		port := reservedPort(t, s)
		rc.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
		rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 256, "uuid": "11111111-2222-3333-4444-555555555555"})
		rc.ok("nvmf_create_subsystem", map[string]any{"nqn": nqn, "min_cntlid": min, "max_cntlid": max})
		rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": nqn, "namespace": map[string]any{"bdev_name": "m"}})
		rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": port}})
		rc.ok("nvmf_subsystem_add_host", map[string]any{"nqn": nqn, "host": host})
		return s, port
	}
	_, p1 := mk(1, 65519)
	_, p2 := mk(1, 65519)
	_, p3 := mk(1001, 2000)
	h := NewServer(t)
	rc := dialRaw(t, h.SockPath())
	attach(rc, "h0", p1, nqn, host)
	params := func(port string) map[string]any {
		return map[string]any{"name": "h0", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port, "subnqn": nqn, "hostnqn": host, "multipath": "multipath"}
	}
	rc.fails(-32602, "bdev_nvme_attach_controller", params(p2)) // cntlid 1 twice
	require.Equal(t, `["h0n1"]`, string(rc.ok("bdev_nvme_attach_controller", params(p3))))
	var ctrls []nvmeCtrlrJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_nvme_get_controllers", map[string]any{"name": "h0"}), &ctrls))
	require.Len(t, ctrls[0].Ctrlrs, 2)
	require.Equal(t, uint16(1001), ctrls[0].Ctrlrs[1].CntlID)
	require.Equal(t, "Controller nope does not exist", rc.fails(22, "bdev_nvme_get_controllers", map[string]any{"name": "nope"}))
}

// A path belongs to one controller at a time: attaching it under another
// name is -17 until the controller, or only that path of it, is detached.
func TestPathBelongsToOneController(t *testing.T) {
	const host = "nqn.2016-06.io.vda:host-h1"
	nqn := "nqn.2016-06.io.vda:exp"
	mk := func(min, max int) string {
		s := NewServer(t)
		rc := dialRaw(t, s.SockPath())
		port := reservedPort(t, s)
		rc.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
		rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 256, "uuid": "11111111-2222-3333-4444-555555555555"})
		rc.ok("nvmf_create_subsystem", map[string]any{"nqn": nqn, "min_cntlid": min, "max_cntlid": max})
		rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": nqn, "namespace": map[string]any{"bdev_name": "m"}})
		rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": port}})
		rc.ok("nvmf_subsystem_add_host", map[string]any{"nqn": nqn, "host": host})
		return port
	}
	p1, p2 := mk(1, 1000), mk(1001, 2000)
	rc := dialRaw(t, NewServer(t).SockPath())
	params := func(name, port string) map[string]any {
		return map[string]any{"name": name, "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port, "subnqn": nqn,
			"hostnqn": host, "multipath": "multipath"}
	}
	rc.ok("bdev_nvme_attach_controller", params("a", p1))
	rc.ok("bdev_nvme_attach_controller", params("a", p2))
	rc.fails(-17, "bdev_nvme_attach_controller", params("b", p1))
	rc.fails(-17, "bdev_nvme_attach_controller", params("b", p2))
	rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "a", "traddr": "127.0.0.1", "trsvcid": p2})
	rc.fails(-17, "bdev_nvme_attach_controller", params("b", p1))
	rc.ok("bdev_nvme_attach_controller", params("b", p2)) // its path was detached
	rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "a"})
	rc.ok("bdev_nvme_attach_controller", params("c", p1))
	var ctrls []nvmeCtrlrJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_nvme_get_controllers", nil), &ctrls))
	require.Len(t, ctrls, 2)
	require.Equal(t, "b", ctrls[0].Name, "in attach order")
	require.Equal(t, "c", ctrls[1].Name)
	rc.fails(22, "bdev_nvme_get_controllers", map[string]any{"name": "a"})
}

func TestReconnectAfterTargetRestart(t *testing.T) {
	const host = "nqn.2016-06.io.vda:fe-1"
	a := NewServer(t)
	ra := dialRaw(t, a.SockPath())
	nqn, port := diskNode(t, a, ra, "a", host)
	c := NewServer(t)
	rc := dialRaw(t, c.SockPath())
	rc.ok("bdev_nvme_attach_controller", map[string]any{
		"name": "v", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port, "subnqn": nqn, "hostnqn": host,
		"ctrlr_loss_timeout_sec": -1, "reconnect_delay_sec": 1,
	})
	a.Crash()
	// Real SPDK waits out reconnect_delay_sec between failed reconnects
	// (testdata/diff/nvme_outage_kill.jsonl).
	require.Eventually(t, func() bool {
		return strings.Contains(string(rc.ok("bdev_nvme_get_controllers", nil)), `"state":"reconnect_is_delayed"`)
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, a.Restart(false))
	ra = dialRaw(t, a.SockPath())
	// The malloc is gone after the crash; export a fresh one under the same NQN.
	ra.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	ra.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 256})
	ra.ok("nvmf_create_subsystem", map[string]any{"nqn": nqn})
	ra.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": nqn, "namespace": map[string]any{"bdev_name": "m"}})
	ra.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": port}})
	ra.ok("nvmf_subsystem_add_host", map[string]any{"nqn": nqn, "host": host})
	require.Eventually(t, func() bool {
		return strings.Contains(string(rc.ok("bdev_nvme_get_controllers", nil)), `"state":"enabled"`)
	}, 10*time.Second, 10*time.Millisecond)
}

func TestANAStates(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	nqn := "nqn.2016-06.io.vda:exp"
	port := reservedPort(t, srv)
	la := map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "adrfam": "ipv4", "trsvcid": port}
	rc.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	_, ok := srv.ANAStates(nqn)
	require.False(t, ok, "no such subsystem")
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": nqn, "ana_reporting": true})
	states, ok := srv.ANAStates(nqn)
	require.True(t, ok)
	require.Empty(t, states, "no listener yet")
	rc.fails(-32602, "nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": la, "ana_state": "bogus"})
	rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": la, "ana_state": "non_optimized"})
	require.Contains(t, string(rc.ok("nvmf_subsystem_get_listeners", map[string]any{"nqn": nqn})), `"ana_state":"non_optimized"`)
	states, _ = srv.ANAStates(nqn)
	require.Equal(t, []string{"non_optimized"}, states)
	_, added, _ := srv.ANAStatesSince(nqn)
	require.Len(t, added, 1)
	require.False(t, added[0].IsZero(), "the listener's state set when it was added")
	beforeSet := time.Now()
	rc.ok("nvmf_subsystem_listener_set_ana_state", map[string]any{"nqn": nqn, "listen_address": la, "ana_state": "optimized"})
	require.Contains(t, string(rc.ok("nvmf_subsystem_get_listeners", map[string]any{"nqn": nqn})), `"ana_state":"optimized"`)
	states, _ = srv.ANAStates(nqn)
	require.Equal(t, []string{"optimized"}, states, "as nvmf_subsystem_get_listeners lists it")
	_, set, _ := srv.ANAStatesSince(nqn)
	require.False(t, set[0].Before(beforeSet), "the change is dated")
	rc.ok("nvmf_subsystem_listener_set_ana_state", map[string]any{"nqn": nqn, "listen_address": la, "ana_state": "optimized"})
	_, again, _ := srv.ANAStatesSince(nqn)
	require.Equal(t, set, again, "setting the state it has changes nothing")
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": nqn + "-plain"})
	_, ok = srv.ANAStates(nqn + "-plain")
	require.False(t, ok, "ANA reporting off: get_listeners lists no ana_states")
	// A second listener on a port another process holds is refused.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	_, hp, _ := net.SplitHostPort(held.Addr().String())
	rc.fails(-32602, "nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": hp}})
	rc.fails(-32602, "nvmf_subsystem_add_listener", map[string]any{"nqn": nqn, "listen_address": map[string]any{"trtype": "tcp", "traddr": "10.255.255.1", "trsvcid": port}})
}

func TestRemoveListenerDropsItsHosts(t *testing.T) {
	const host = "nqn.2016-06.io.vda:fe-1"
	a := NewServer(t)
	ra := dialRaw(t, a.SockPath())
	nqn, port := diskNode(t, a, ra, "a", host)
	c := NewServer(t)
	rc := dialRaw(t, c.SockPath())
	attach(rc, "v", port, nqn, host)
	ra.ok("nvmf_subsystem_remove_listener", map[string]any{"nqn": nqn, "listen_address": map[string]any{"trtype": "tcp", "traddr": "127.0.0.1", "trsvcid": port}})
	require.Eventually(t, func() bool {
		return strings.Contains(string(rc.ok("bdev_nvme_get_controllers", map[string]any{"name": "v"})), `"state":"failed"`)
	}, 5*time.Second, 5*time.Millisecond)
	rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "v"})
	rc.fails(-19, "bdev_nvme_attach_controller", map[string]any{"name": "w", "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port, "subnqn": nqn, "hostnqn": host})
}
