package vda_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/alloc"
	"github.com/vda-io/vda/store"
)

func malloc(dn, name string, size uint64) vda.PhysicalDisk {
	return vda.PhysicalDisk{Name: name, DNName: dn, Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: size}}
}

// TestDefaultPlacerSkipsUnavailable: offline or failed PDs, DNs and CNs,
// and PDs of unknown DNs, are never chosen; the shortage says what is
// missing and wraps ErrResourceExhausted.
func TestDefaultPlacerSkipsUnavailable(t *testing.T) {
	failed := vda.Status{Health: vda.HealthFailed}
	c := vda.Candidates{
		DNs: map[string]vda.DiskNode{
			"dn-ok": {Name: "dn-ok", Location: "r1"}, "dn-off": {Name: "dn-off", Offline: true},
			"dn-failed": {Name: "dn-failed", Status: failed}, "dn-ok2": {Name: "dn-ok2", Location: "r2"},
		},
		PDs: []vda.PhysicalDisk{
			malloc("dn-off", "pd", 1<<30), malloc("dn-failed", "pd", 1<<30), malloc("dn-gone", "pd", 1<<30),
			malloc("dn-ok", "pd-ok", 1<<30), malloc("dn-ok2", "pd-ok", 1<<30),
			{Name: "pd-off", DNName: "dn-ok", Offline: true, Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 1 << 30}},
			{Name: "pd-failed", DNName: "dn-ok", Status: failed, Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 1 << 30}},
		},
		CNs: []vda.ControllerNode{
			{Name: "cn-off", Offline: true}, {Name: "cn-failed", Status: failed}, {Name: "cn-busy", CntlrCount: 9}, {Name: "cn-ok", CntlrCount: 1},
		},
	}
	p, err := vda.DefaultPlacer{}.Place(vda.PlacementRequest{StripeCount: 2, CntlrCount: 2, VDSizeBytes: 64 << 20, Name: "da"}, c)
	require.NoError(t, err)
	got := []string{p.PDs[0].DNName + "/" + p.PDs[0].Name, p.PDs[1].DNName + "/" + p.PDs[1].Name}
	require.ElementsMatch(t, []string{"dn-ok/pd-ok", "dn-ok2/pd-ok"}, got)
	require.Equal(t, "cn-ok", p.CNs[0].Name, "least loaded is the primary")
	require.Equal(t, "cn-busy", p.CNs[1].Name)

	_, err = vda.DefaultPlacer{}.Place(vda.PlacementRequest{StripeCount: 3, CntlrCount: 1, VDSizeBytes: 64 << 20}, c)
	require.ErrorIs(t, err, vda.ErrResourceExhausted)
	require.EqualError(t, err, "vda: resource exhausted: need 3 online physical disks with 67108864 bytes free, found 2")
	_, err = vda.DefaultPlacer{}.Place(vda.PlacementRequest{StripeCount: 1, CntlrCount: 3, VDSizeBytes: 64 << 20}, c)
	require.EqualError(t, err, "vda: resource exhausted: need 3 online controller nodes, found 2")
}

type policyFunc func(alloc.Request, []alloc.Disk, []alloc.Node) (alloc.Placement, error)

func (f policyFunc) Place(r alloc.Request, d []alloc.Disk, n []alloc.Node) (alloc.Placement, error) {
	return f(r, d, n)
}

// TestPolicyPlacer passes what the policy needs and maps its answers back.
func TestPolicyPlacer(t *testing.T) {
	c := vda.Candidates{
		DNs: map[string]vda.DiskNode{"dn1": {Name: "dn1", Location: "rack1"}},
		PDs: []vda.PhysicalDisk{
			{Name: "pd0", DNName: "dn1", AllocatedBytes: 10 << 20, Status: vda.Status{TotalBytes: 100 << 20}},
			{Name: "pd1", DNName: "dn1", Status: vda.Status{TotalBytes: 50 << 20}},
		},
		CNs: []vda.ControllerNode{{Name: "cn1", Location: "rack2", CntlrCount: 4}},
	}
	var seen alloc.Request
	pp := vda.PolicyPlacer{Policy: policyFunc(func(r alloc.Request, d []alloc.Disk, n []alloc.Node) (alloc.Placement, error) {
		seen = r
		require.Equal(t, []alloc.Disk{
			{ID: "dn1/pd0", Node: "dn1", Location: "rack1", CapacityBytes: 100 << 20, FreeBytes: 90 << 20},
			{ID: "dn1/pd1", Node: "dn1", Location: "rack1", CapacityBytes: 50 << 20, FreeBytes: 50 << 20},
		}, d)
		require.Equal(t, []alloc.Node{{ID: "cn1", Location: "rack2", Load: 4}}, n)
		return alloc.Placement{Disks: []int{1}, Nodes: []int{0}}, nil
	})}
	p, err := pp.Place(vda.PlacementRequest{StripeCount: 1, CntlrCount: 1, VDSizeBytes: 4 << 20, Name: "da", Attempt: 3}, c)
	require.NoError(t, err)
	require.Equal(t, alloc.Request{VDs: 1, Controllers: 1, VDSizeBytes: 4 << 20, Seed: "da", Attempt: 3}, seen)
	require.Equal(t, "pd1", p.PDs[0].Name)
	require.Equal(t, "cn1", p.CNs[0].Name)

	bad := vda.PolicyPlacer{Policy: policyFunc(func(alloc.Request, []alloc.Disk, []alloc.Node) (alloc.Placement, error) {
		return alloc.Placement{Disks: []int{7}}, nil
	})}
	_, err = bad.Place(vda.PlacementRequest{StripeCount: 1}, c)
	require.ErrorContains(t, err, "index 7")
	boom := errors.New("boom")
	failing := vda.PolicyPlacer{Policy: policyFunc(func(alloc.Request, []alloc.Disk, []alloc.Node) (alloc.Placement, error) {
		return alloc.Placement{}, boom
	})}
	_, err = failing.Place(vda.PlacementRequest{}, c)
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, vda.ErrResourceExhausted)
}

// TestCreateDiskArraySkipsFailedNodes: the health the monitor writes
// under the status keys keeps CreateDiskArray off failed DNs and CNs.
func TestCreateDiskArraySkipsFailedNodes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	c := newCluster(t, s)
	buildCluster(t, c, 3, 1, 3) // dn000..dn002, cn000..cn002
	failed, err := json.Marshal(vda.Status{Health: vda.HealthFailed})
	require.NoError(t, err)
	for _, key := range []string{vda.KeyDN("dn001:9720"), vda.KeyCN("cn002:9820")} {
		res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: vda.KeyStatus(key), Value: failed}}})
		require.NoError(t, err)
		require.True(t, res.Succeeded)
	}
	for i := range 4 {
		da, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da" + string(rune('a'+i)), CntlrCount: 2, SizeBytes: 16 << 20,
			Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
		require.NoError(t, err)
		for _, vd := range da.VDs {
			require.NotEqual(t, "dn001:9720", vd.DNName)
		}
		for _, cn := range da.Cntlrs {
			require.NotEqual(t, "cn002:9820", cn.CNName)
		}
	}
	_, err = c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "wide", CntlrCount: 3, SizeBytes: 16 << 20, Conf: vda.DAConf{StripeCount: 1, StripeSizeKB: 64}})
	require.ErrorIs(t, err, vda.ErrResourceExhausted)
}

// TestCreateDiskArraySpreadsPrimaries creates DAs one after another on
// ten equal CNs: each CN gets about its share of primaries, so a CN's
// failure moves about a tenth of the DAs (before, half the CNs got every
// primary).
func TestCreateDiskArraySpreadsPrimaries(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, newStore(t))
	buildCluster(t, c, 20, 8, 10)
	const das = 500
	primaries := map[string]int{}
	for i := range das {
		da, err := c.CreateDiskArray(ctx, vda.DiskArraySpec{Name: fmt.Sprintf("da%d", i), CntlrCount: 2, SizeBytes: 16 << 20,
			Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
		require.NoError(t, err)
		for _, cn := range da.Cntlrs {
			if cn.Primary {
				primaries[cn.CNName]++
			}
		}
	}
	t.Logf("primaries per CN: %v", primaries)
	require.Len(t, primaries, 10, "every CN has primaries: %v", primaries)
	for cn, n := range primaries {
		require.InDelta(t, das/10, n, das/10*0.4, "%s of %v", cn, primaries)
	}
}
