package spdktest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// primaryStack is a controller node's primary stack over two disk nodes: VD
// controllers va1/vb1 (with the given loss timeout), raid0 "raid" over
// them, lvstore "da" and thin lvol "main" on it, exported (a namespace of
// subsystem exportNQN), so that host I/O can reach the raid.
type primaryStack struct {
	a, b, c    *Server
	ra, rb, rc *rawConn
	nqnA, nqnB string
}

const fenceHost = "nqn.2016-06.io.vda:fe-1"

func newPrimaryStack(t *testing.T, lossSec int) *primaryStack {
	t.Helper()
	p := &primaryStack{a: NewServer(t), b: NewServer(t)}
	p.ra, p.rb = dialRaw(t, p.a.SockPath()), dialRaw(t, p.b.SockPath())
	var portA, portB string
	p.nqnA, portA = diskNode(t, p.a, p.ra, "a", fenceHost)
	p.nqnB, portB = diskNode(t, p.b, p.rb, "b", fenceHost)
	p.c = NewServer(t)
	p.rc = dialRaw(t, p.c.SockPath())
	for _, x := range []struct{ name, port, nqn string }{{"va1", portA, p.nqnA}, {"vb1", portB, p.nqnB}} {
		res := p.rc.ok("bdev_nvme_attach_controller", map[string]any{
			"name": x.name, "trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": x.port,
			"subnqn": x.nqn, "hostnqn": fenceHost, "ctrlr_loss_timeout_sec": lossSec, "reconnect_delay_sec": 1,
			"fast_io_fail_timeout_sec": 1,
		})
		var names []string
		require.NoError(t, json.Unmarshal(res, &names))
		require.Equal(t, []string{x.name + "n1"}, names)
	}
	p.rc.ok("bdev_raid_create", map[string]any{"name": "raid", "raid_level": "raid0", "strip_size_kb": 64,
		"base_bdevs": []string{"va1n1", "vb1n1"}})
	p.rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "raid", "lvs_name": "da", "clear_method": "none"})
	p.rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "da", "lvol_name": "main", "size_in_mib": 64, "thin_provision": true})
	p.rc.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	p.rc.ok("nvmf_create_subsystem", map[string]any{"nqn": exportNQN, "serial_number": "SNexp", "model_number": "VDA_CONTROLLER"})
	p.rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": exportNQN, "namespace": map[string]any{"bdev_name": "da/main"}})
	return p
}

const exportNQN = "nqn.2016-06.io.vda:exp-1"

// fence removes the primary's host at both disk nodes (a failover's fence).
func (p *primaryStack) fence() {
	p.ra.ok("nvmf_subsystem_remove_host", map[string]any{"nqn": p.nqnA, "host": fenceHost})
	p.rb.ok("nvmf_subsystem_remove_host", map[string]any{"nqn": p.nqnB, "host": fenceHost})
}

// Two raid0 members that go away while host I/O can reach the raid crash
// real SPDK v24.01 (raid0_submit_rw_request: base bdev desc null); the fake
// dies the same way, here when SPDK itself deletes both fenced VD
// controllers after their loss timeout: the order the agents used before.
func TestFencedPrimaryWithLossTimeoutCrashes(t *testing.T) {
	p := newPrimaryStack(t, 1)
	p.fence()
	require.Eventually(t, func() bool { return len(p.c.Crashes()) > 0 }, 30*time.Second, 10*time.Millisecond)
	require.Contains(t, p.c.Crashes()[0], "base bdev desc null")
	_, err := dialRawErr(p.c.SockPath())
	require.Error(t, err, "the crashed target no longer answers")
	require.Empty(t, p.a.Crashes())
}

// Detaching the member controllers of an exported raid before deleting the
// raid is the wrong teardown order: the first detach takes the raid
// offline, the second frees a member SPDK is still unregistering, and the
// fake crashes.
func TestDetachBeforeRaidDeleteCrashes(t *testing.T) {
	p := newPrimaryStack(t, -1)
	p.rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "va1"})
	require.Empty(t, p.c.Crashes(), "one lost member takes the raid offline")
	// The target may die before it answers: send without waiting for a reply.
	p.rc.send(`{"jsonrpc":"2.0","id":99,"method":"bdev_nvme_detach_controller","params":{"name":"vb1"}}`)
	require.Eventually(t, func() bool { return len(p.c.Crashes()) > 0 }, 10*time.Second, time.Millisecond)
	require.Contains(t, p.c.Crashes()[0], "member vb1n1 of raid raid lost while the raid, exported through an lvol, was unregistering")
}

// Recorded on real SPDK v24.01 (testdata/diff/raid_crash_*): raid0 members
// lost under an lvstore nothing exports, even back to back, leave the raid
// offline and the lvstore unloaded, and the target alive.
func TestIdleRaid0LosesMembersSurvives(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	for _, m := range []string{"m0", "m1", "m2"} {
		rc.ok("bdev_malloc_create", map[string]any{"name": m, "num_blocks": 16384, "block_size": 512})
	}
	rc.ok("bdev_raid_create", map[string]any{"name": "r", "raid_level": "raid0", "strip_size_kb": 64, "base_bdevs": []string{"m0", "m1", "m2"}})
	rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "r", "lvs_name": "lvs", "clear_method": "none"})
	rc.ok("bdev_malloc_delete", map[string]any{"name": "m0"})
	rc.ok("bdev_malloc_delete", map[string]any{"name": "m1"})
	var raids []struct {
		State       string `json:"state"`
		Discovered  int    `json:"num_base_bdevs_discovered"`
		Operational int    `json:"num_base_bdevs_operational"`
	}
	require.NoError(t, json.Unmarshal(rc.ok("bdev_raid_get_bdevs", map[string]any{"category": "all"}), &raids))
	require.Len(t, raids, 1)
	require.Equal(t, "offline", raids[0].State)
	require.Equal(t, 1, raids[0].Discovered)
	require.Equal(t, 2, raids[0].Operational)
	require.JSONEq(t, `[]`, string(rc.ok("bdev_lvol_get_lvstores", nil)))
	require.Empty(t, srv.Crashes())
}

// The safe order on a fenced primary whose controllers never give up: the
// raid first (its lvstore unloads over members that are still there), then
// the controllers. Nothing crashes, and the stack is gone.
func TestFencedPrimaryTornDownInOrderSurvives(t *testing.T) {
	p := newPrimaryStack(t, -1)
	p.fence()
	require.Eventually(t, func() bool {
		var cs []struct {
			Ctrlrs []struct {
				State string `json:"state"`
			} `json:"ctrlrs"`
		}
		require.NoError(t, json.Unmarshal(p.rc.ok("bdev_nvme_get_controllers", nil), &cs))
		for _, c := range cs {
			if len(c.Ctrlrs) != 1 || c.Ctrlrs[0].State == "enabled" {
				return false
			}
		}
		return len(cs) == 2
	}, 10*time.Second, 10*time.Millisecond, "both fenced paths are down but kept")
	p.rc.ok("bdev_raid_delete", map[string]any{"name": "raid"})
	p.rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"lvs_name": "da"})
	p.rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "va1"})
	p.rc.ok("bdev_nvme_detach_controller", map[string]any{"name": "vb1"})
	p.rc.ok("spdk_get_version", nil)
	require.Empty(t, p.c.Crashes())
}
