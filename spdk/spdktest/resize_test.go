package spdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// numBlocks is num_blocks of bdev name as bdev_get_bdevs lists it.
func numBlocks(t *testing.T, rc *rawConn, name string) uint64 {
	t.Helper()
	var bs []struct {
		NumBlocks uint64 `json:"num_blocks"`
	}
	require.NoError(t, json.Unmarshal(rc.ok("bdev_get_bdevs", map[string]any{"name": name}), &bs))
	require.Len(t, bs, 1)
	return bs[0].NumBlocks
}

// hostBlocks is the size a connected host knows of namespace 1.
func hostBlocks(c *fabric.Conn) uint64 {
	ni, _ := c.Info().Namespace(1)
	return ni.NumBlocks
}

// As on real spdk_tgt v24.01 (a host attached through a re-export logged
// "NSID 1 is resized" and listed the new num_blocks at once): growing an exported lvol tells the hosts connected to its
// subsystem (Namespace Attribute Changed), a bdev_nvme host resizes its
// bdev, and a subsystem re-exporting that bdev tells its own hosts, all
// without reconnecting. A shrink of the claimed lvol is refused (-32602
// "Device or resource busy"), as on real SPDK.
func TestResizeReachesHostsThroughAReExport(t *testing.T) {
	const host, sub = "nqn.2016-06.io.vda:host-h", "nqn.2016-06.io.vda:exp-test"
	a, b := NewServer(t), NewServer(t)
	ra, rb := dialRaw(t, a.SockPath()), dialRaw(t, b.SockPath())
	portA, portB := reservedPort(t, a), reservedPort(t, b)
	ra.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	rb.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	ra.ok("bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 16384})
	ra.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m0", "lvs_name": "lvs", "cluster_sz": 1 << 20, "clear_method": "none"})
	ra.ok("bdev_lvol_create", map[string]any{"lvs_name": "lvs", "lvol_name": "v0", "size_in_mib": 16, "thin_provision": true})
	for _, x := range []struct {
		rc   *rawConn
		bdev string
		port string
	}{{ra, "lvs/v0", portA}, {rb, "pn1", portB}} {
		if x.rc == rb {
			require.Equal(t, []string{"pn1"}, attach(rb, "p", portA, sub, host))
		}
		x.rc.ok("nvmf_create_subsystem", map[string]any{"nqn": sub, "allow_any_host": true, "ana_reporting": true})
		x.rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": sub, "namespace": map[string]any{"bdev_name": x.bdev,
			"uuid": "11111111-2222-3333-4444-555555555555"}})
		x.rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": sub, "listen_address": map[string]any{
			"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": x.port}})
	}
	dial := func(port string) *fabric.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := fabric.Dial(ctx, fabric.TransportID{TrType: "TCP", AdrFam: "IPv4", TrAddr: "127.0.0.1", TrSvcID: port}, sub, host)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	viaA, viaB := dial(portA), dial(portB)
	require.EqualValues(t, 4096, hostBlocks(viaA))
	require.EqualValues(t, 4096, hostBlocks(viaB))

	ra.ok("bdev_lvol_resize", map[string]any{"name": "lvs/v0", "size_in_mib": 32})
	require.EqualValues(t, 8192, numBlocks(t, ra, "lvs/v0"))
	for name, c := range map[string]*fabric.Conn{"via a": viaA, "via b": viaB} {
		require.Eventually(t, func() bool { return hostBlocks(c) == 8192 }, 10*time.Second, time.Millisecond, name)
		select {
		case <-c.Events():
		default:
			t.Fatalf("%s: no event signalled", name)
		}
	}
	require.EqualValues(t, 8192, numBlocks(t, rb, "pn1"), "bdev_nvme resized its bdev")
	tail := make([]byte, 4096)
	tail[0] = 0xab
	_, err := viaB.WriteAt(1, tail, 8191*4096)
	require.NoError(t, err, "past the old end, through the re-export")
	got := make([]byte, 4096)
	_, err = viaA.ReadAt(1, got, 8191*4096)
	require.NoError(t, err)
	require.Equal(t, tail, got)
	info, err := viaB.Identify()
	require.NoError(t, err)
	ni, _ := info.Namespace(1)
	require.EqualValues(t, 8192, ni.NumBlocks, "Identify answers the new size")

	require.Equal(t, "Device or resource busy", ra.fails(-32602, "bdev_lvol_resize", map[string]any{"name": "lvs/v0", "size_in_mib": 16}))
	require.EqualValues(t, 8192, numBlocks(t, ra, "lvs/v0"))
}

// As on SPDK v24.01 (nvmf_subsystem_ns_changed sends every controller a
// Namespace Attribute Changed event; bdev_nvme's aer_cb answers it with
// nvme_ctrlr_populate_namespaces): a host connected to a subsystem
// without a namespace sees one added later and can use it without
// reconnecting, a bdev_nvme host that attached the empty subsystem gets
// the namespace's bdev, and removing the namespace takes both away.
func TestNamespaceChangesReachConnectedHosts(t *testing.T) {
	const host, sub = "nqn.2016-06.io.vda:host-h", "nqn.2016-06.io.vda:exp-test"
	a, b := NewServer(t), NewServer(t)
	ra, rb := dialRaw(t, a.SockPath()), dialRaw(t, b.SockPath())
	port := reservedPort(t, a)
	ra.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	ra.ok("bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 256})
	ra.ok("nvmf_create_subsystem", map[string]any{"nqn": sub, "allow_any_host": true, "ana_reporting": true})
	ra.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": sub, "listen_address": map[string]any{
		"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := fabric.Dial(ctx, fabric.TransportID{TrType: "TCP", AdrFam: "IPv4", TrAddr: "127.0.0.1", TrSvcID: port}, sub, host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.Empty(t, c.Info().Namespaces)
	require.Empty(t, attach(rb, "p", port, sub, host), "no namespace, no bdev")
	hasBdev := func(rc *rawConn, name string) bool {
		return rc.call("bdev_get_bdevs", map[string]any{"name": name}).Error == nil
	}

	ra.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": sub, "namespace": map[string]any{"bdev_name": "m0",
		"uuid": "11111111-2222-3333-4444-555555555555"}})
	require.Eventually(t, func() bool { return hostBlocks(c) == 256 }, 10*time.Second, time.Millisecond, "the host sees the namespace")
	data := bytes.Repeat([]byte{0x3c}, 4096)
	_, err = c.WriteAt(1, data, 4096)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return hasBdev(rb, "pn1") }, 10*time.Second, time.Millisecond, "bdev_nvme populated the namespace")
	require.EqualValues(t, 256, numBlocks(t, rb, "pn1"))

	ra.ok("nvmf_subsystem_remove_ns", map[string]any{"nqn": sub, "nsid": 1})
	require.Eventually(t, func() bool { return len(c.Info().Namespaces) == 0 }, 10*time.Second, time.Millisecond, "the host lost the namespace")
	_, err = c.ReadAt(1, data, 4096)
	require.ErrorIs(t, err, fabric.ErrNoNamespace)
	require.Eventually(t, func() bool { return !hasBdev(rb, "pn1") }, 10*time.Second, time.Millisecond, "bdev_nvme depopulated the namespace")
}
