package spdk_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// The fake SPDK's listings of a disk node (malloc, aio and null disks, an lvstore with an
// lvol, a snapshot and a clone, exported over NVMe/TCP) and of a controller node (that export
// attached over the fabric, a local PCIe NVMe disk, a raid0 and a passthru on it, a
// subsystem) take the client's one-pass decode, which yields what encoding/json yields.
func TestFastDecodeTakesFakeListings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	port := reserve.ForTest(t, "127.0.0.1")
	dn := dialFake(ctx, t, spdktest.NewServer(t, spdktest.WithReserved(port)))
	cn := dialFake(ctx, t, spdktest.NewServer(t, spdktest.WithNVMeDevice(spdktest.NVMeDevice{TrAddr: "0000:81:00.0", SizeBytes: 32 << 20})))

	img := filepath.Join(t.TempDir(), "pd1.img")
	require.NoError(t, os.WriteFile(img, nil, 0o600))
	require.NoError(t, os.Truncate(img, 32<<20))
	const be = "nqn.2016-06.io.vda:be-1"
	addr := map[string]any{"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": strconv.Itoa(int(port.Addr().Port()))}
	run(ctx, t, dn, []call{
		{"nvmf_create_transport", map[string]any{"trtype": "TCP"}},
		{"bdev_malloc_create", map[string]any{"name": "pd0", "block_size": 4096, "num_blocks": 16384}},
		{"bdev_aio_create", map[string]any{"name": "pd1", "filename": img, "block_size": 4096}},
		{"bdev_null_create", map[string]any{"name": "pd2", "block_size": 4096, "num_blocks": 1024}},
		{"bdev_lvol_create_lvstore", map[string]any{"bdev_name": "pd0", "lvs_name": "lvs"}},
		{"bdev_lvol_create", map[string]any{"lvol_name": "vd", "lvs_name": "lvs", "size_in_mib": 8}},
		{"bdev_lvol_snapshot", map[string]any{"lvol_name": "lvs/vd", "snapshot_name": "snap"}},
		{"bdev_lvol_clone", map[string]any{"snapshot_name": "lvs/snap", "clone_name": "cl"}},
		{"nvmf_create_subsystem", map[string]any{"nqn": be, "allow_any_host": true, "ana_reporting": true, "serial_number": "00000000000000000001"}},
		{"nvmf_subsystem_add_ns", map[string]any{"nqn": be, "namespace": map[string]any{"bdev_name": "lvs/vd"}}},
		{"nvmf_subsystem_add_listener", map[string]any{"nqn": be, "listen_address": addr}},
	})
	run(ctx, t, cn, []call{
		{"nvmf_create_transport", map[string]any{"trtype": "TCP"}},
		{"bdev_nvme_attach_controller", map[string]any{"name": "be", "trtype": "tcp", "adrfam": "ipv4",
			"traddr": "127.0.0.1", "trsvcid": addr["trsvcid"], "subnqn": be, "hostnqn": "nqn.2016-06.io.vda:fe-1"}},
		{"bdev_nvme_attach_controller", map[string]any{"name": "pd", "trtype": "PCIe", "traddr": "0000:81:00.0"}},
		{"bdev_malloc_create", map[string]any{"name": "m1", "block_size": 4096, "num_blocks": 2048}},
		{"bdev_raid_create", map[string]any{"name": "r0", "raid_level": "raid0", "strip_size_kb": 64, "base_bdevs": []string{"ben1", "m1"}}},
		{"bdev_passthru_create", map[string]any{"name": "pt", "base_bdev_name": "r0"}},
		{"nvmf_create_subsystem", map[string]any{"nqn": "nqn.2016-06.io.vda:exp-1", "model_number": "VDA_EXPORTER"}},
		{"nvmf_subsystem_add_host", map[string]any{"nqn": "nqn.2016-06.io.vda:exp-1", "host": "nqn.2016-06.io.vda:host-1"}},
		{"nvmf_subsystem_add_ns", map[string]any{"nqn": "nqn.2016-06.io.vda:exp-1", "namespace": map[string]any{"bdev_name": "pt", "anagrpid": 1}}},
	})

	for _, tc := range []struct {
		c      *spdk.Client
		method string
		params any
		want   string // a product name, module or member the listing must show
	}{
		{dn, "bdev_get_bdevs", nil, `"aio"`},
		{dn, "bdev_get_bdevs", nil, `"clones"`},
		{dn, "nvmf_get_subsystems", nil, `"listen_addresses":[{`},
		{dn, "bdev_lvol_get_lvols", nil, `"is_clone":true`},
		{dn, "bdev_lvol_get_lvstores", nil, `"cluster_size"`},
		{dn, "nvmf_subsystem_get_listeners", map[string]any{"nqn": be}, `"ana_states"`},
		{cn, "bdev_get_bdevs", nil, `"raid"`},
		{cn, "bdev_get_bdevs", nil, `"pci_address"`},
		{cn, "bdev_get_bdevs", nil, `"passthru"`},
		{cn, "bdev_get_bdevs", nil, `"trid"`},
		{cn, "nvmf_get_subsystems", nil, `"namespaces"`},
		{cn, "bdev_nvme_get_controllers", nil, `"ctrlrs"`},
		{cn, "bdev_raid_get_bdevs", map[string]any{"category": "all"}, `"base_bdevs_list"`},
	} {
		var raw json.RawMessage
		require.NoError(t, tc.c.Call(ctx, tc.method, tc.params, &raw), tc.method)
		require.Contains(t, compact(t, raw), tc.want, tc.method)
		require.True(t, spdk.CheckFastDecode(t, tc.method, raw), "%s: %s", tc.method, raw)
	}

	// The brief listing is the full one without supported_io_types and the NVMe paths.
	for _, c := range []*spdk.Client{dn, cn} {
		full, err := c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{})
		require.NoError(t, err)
		brief, err := c.BdevGetBdevsBrief(ctx, spdk.BdevGetBdevsParams{})
		require.NoError(t, err)
		var paths int
		for i := range full {
			require.NotNil(t, full[i].SupportedIOTypes, full[i].Name)
			paths += len(full[i].DriverSpecific.NVMe)
			full[i].SupportedIOTypes, full[i].DriverSpecific.NVMe = nil, nil
		}
		require.Equal(t, full, brief)
		if c == cn {
			require.Positive(t, paths, "the CN lists NVMe bdevs")
		}
	}
}

type call struct {
	method string
	params any
}

func run(ctx context.Context, t *testing.T, c *spdk.Client, calls []call) {
	t.Helper()
	for _, cl := range calls {
		require.NoError(t, c.Call(ctx, cl.method, cl.params, nil), cl.method)
	}
}

func dialFake(ctx context.Context, t *testing.T, s *spdktest.Server) *spdk.Client {
	c, err := spdk.Dial(ctx, s.SockPath())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func compact(t *testing.T, raw []byte) string {
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
