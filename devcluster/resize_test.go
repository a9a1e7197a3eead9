package devcluster_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// pathTo connects the host to the exporter through one controller's CN.
func pathTo(t *testing.T, exp vda.Exporter, idx int) *fabric.Conn {
	t.Helper()
	for _, p := range exp.Ports {
		if p.CntlrIdx == idx {
			// A secondary's port may come up after the primary's.
			var conn *fabric.Conn
			require.Eventually(t, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				var err error
				conn, err = fabric.Dial(ctx, hostPath(p.CNListener), exp.NQN, hostNQN)
				return err == nil
			}, time.Minute, 10*time.Millisecond, "connecting through controller %d", idx)
			t.Cleanup(func() { _ = conn.Close() })
			return conn
		}
	}
	t.Fatalf("no port of controller %d", idx)
	return nil
}

// seesSize waits until a connected host's namespace 1 has size bytes.
func seesSize(t *testing.T, conn *fabric.Conn, size uint64, what string) {
	t.Helper()
	var seen ControllerInfoSeen
	require.Eventually(t, func() bool {
		seen.info = conn.Info()
		ni, ok := seen.info.Namespace(1)
		return ok && uint64(ni.BlockSize)*ni.NumBlocks == size
	}, time.Minute, time.Millisecond, "%s: the host should see %d bytes; it sees %+v", what, size, &seen)
}

// ControllerInfoSeen prints the last controller info a wait saw.
type ControllerInfoSeen struct{ info fabric.ControllerInfo }

func (s *ControllerInfoSeen) String() string { return fmt.Sprintf("%+v", s.info) }

func mustPrimary(t *testing.T, da vda.DiskArray) vda.Cntlr {
	t.Helper()
	p, ok := da.Primary()
	require.True(t, ok)
	return p
}

// lvolOf reads the DA lvol from the SPDK of the node named cn.
func lvolOf(t *testing.T, c *devcluster.Cluster, cn string, da vda.DiskArray) spdk.Bdev {
	t.Helper()
	n := c.Node(cn)
	require.NotNil(t, n)
	cl, err := spdk.Dial(context.Background(), n.SockPath())
	require.NoError(t, err)
	defer cl.Close()
	alias := nvmeof.LvolAlias(nvmeof.DALvstoreName(da.ID), nvmeof.DALvolName(da.ID))
	bs, err := cl.BdevGetBdevs(context.Background(), spdk.BdevGetBdevsParams{Name: alias})
	require.NoError(t, err)
	require.Len(t, bs, 1)
	return bs[0]
}

// TestResizeAndQoSAcrossFailover: da modify grows a connected array online
// (the host sees the new size on the primary's path and on the
// secondary's without reconnecting) and sets QoS limits on the primary's
// volume; after the primary's node dies and after a switchover, the new
// primary serves the grown volume, the data past the old end, and the
// same limits.
func TestResizeAndQoSAcrossFailover(t *testing.T) {
	c, _ := start(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api := c.API()
	const small = 16 << 20
	da, err := api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: small,
		PhysicalSizeBytes: 40 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	_, err = api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: hostNQN})
	require.NoError(t, err)
	exp := exported(t, api, 0)
	viaPrimary, viaSecondary := pathTo(t, exp, 0), pathTo(t, exp, 1)
	seesSize(t, viaPrimary, small, "primary")
	seesSize(t, viaSecondary, small, "secondary")
	head := bytes.Repeat([]byte{0x5e}, 64<<10)
	_, err = viaPrimary.WriteAt(1, head, 0)
	require.NoError(t, err)

	size := da.MaxSizeBytes()
	require.Greater(t, size, uint64(40<<20)-1)
	q := vda.QoS{RWIOsPerSec: 30000, WriteMBytesPerSec: 200}
	start := time.Now()
	da, err = api.ModifyDiskArray(ctx, "da0", vda.DiskArrayUpdate{SizeBytes: &size, QoS: &q})
	require.NoError(t, err)
	// Waiting for the applied size returns only once the primary grew the
	// lvol (a healthy status alone was there before the modify).
	da, err = api.WaitDiskArray(ctx, "da0", vda.Resized(size))
	require.NoError(t, err)
	require.Equal(t, size, da.Status.AppliedSizeBytes)
	require.Equal(t, size, lvolOf(t, c, mustPrimary(t, da).CNName, da).SizeBytes(), "grown when the wait returned")
	seesSize(t, viaPrimary, size, "primary")
	seesSize(t, viaSecondary, size, "secondary")
	t.Logf("resize of a connected array in the dev cluster: modify to the new size on both paths in %v", time.Since(start))
	got, err := api.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Equal(t, q, got.QoS, "da get shows the limits")
	primary, _ := da.Primary()
	want := spdk.RateLimits{RWIOsPerSec: 30000, WMBytesPerSec: 200}
	require.Eventually(t, func() bool { return lvolOf(t, c, primary.CNName, da).AssignedRateLimits == want },
		time.Minute, 5*time.Millisecond, "the primary's volume has the limits")

	tail := bytes.Repeat([]byte{0xe5}, 64<<10)
	off := int64(size) - int64(len(tail))
	_, err = viaSecondary.WriteAt(1, tail, off)
	require.NoError(t, err, "writing past the old end through the secondary")

	// The primary's node dies: the secondary is promoted.
	c.Node(primary.CNName).Kill()
	exp = exported(t, api, 1)
	// The promoted controller swaps its namespace's bdev (the export it
	// proxied for the array's lvol): the host reconnects, as multipath does.
	promoted := pathTo(t, exp, 1)
	seesSize(t, promoted, size, "promoted controller")
	buf := make([]byte, len(tail))
	_, err = promoted.ReadAt(1, buf, off)
	require.NoError(t, err)
	require.Equal(t, tail, buf)
	da, err = api.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	next, _ := da.Primary()
	require.NotEqual(t, primary.CNName, next.CNName)
	require.Equal(t, size, lvolOf(t, c, next.CNName, da).SizeBytes())
	require.Equal(t, want, lvolOf(t, c, next.CNName, da).AssignedRateLimits, "set again on the new primary")

	// The old node returns as a secondary, then becomes primary again by
	// a switchover: every path still sees the grown volume and its data.
	require.NoError(t, c.Node(primary.CNName).Restart(ctx))
	require.EventuallyWithT(t, func(ct *assertT) {
		da, err := api.GetDiskArray(ctx, "da0")
		if !ok(ct, err) {
			return
		}
		for _, cn := range da.Cntlrs {
			if st := da.Status.Part(cn.ID); st.Health != vda.HealthHealthy {
				ct.Errorf("controller %d: %q %s", cn.Idx, st.Health, st.ErrorMsg)
			}
		}
	}, time.Minute, 20*time.Millisecond)
	_, err = api.SwitchoverDiskArray(ctx, "da0", primary.Idx)
	require.NoError(t, err)
	exp = exported(t, api, primary.Idx)
	da, err = api.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return lvolOf(t, c, primary.CNName, da).AssignedRateLimits == want },
		time.Minute, 5*time.Millisecond, "set again after the switchover")
	for idx, what := range map[int]string{0: "switched-over primary", 1: "secondary after switchover"} {
		conn := pathTo(t, exp, idx)
		seesSize(t, conn, size, what)
		require.Eventually(t, func() bool { _, err := conn.ReadAt(1, buf, off); return err == nil }, time.Minute, 5*time.Millisecond)
		require.Equal(t, tail, buf, what)
		_, err = conn.ReadAt(1, buf, 0)
		require.NoError(t, err)
		require.Equal(t, head, buf, what)
	}
}
