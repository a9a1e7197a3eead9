package devcluster_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

const (
	hostNQN1 = "nqn.2016-06.io.spdk:host1"
	hostNQN2 = "nqn.2016-06.io.spdk:host2"
)

// hostOf is multipath for another host NQN.
func hostOf(t *testing.T, exp vda.Exporter, host string) *fabric.Multipath {
	t.Helper()
	var paths []fabric.TransportID
	for _, p := range exp.Ports {
		paths = append(paths, hostPath(p.CNListener))
	}
	o := fabric.DefaultMultipathOptions()
	o.RetryInterval = 10 * time.Millisecond
	m, err := fabric.NewMultipath(paths, exp.NQN, host, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// admitted reports whether host can connect through every port of exp.
func admitted(exp vda.Exporter, host string) bool {
	for _, p := range exp.Ports {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := fabric.Dial(ctx, hostPath(p.CNListener), exp.NQN, host)
		cancel()
		if err != nil {
			return false
		}
		_ = conn.Close()
	}
	return true
}

// hostIO is one host's region of the namespace and what it last wrote.
type hostIO struct {
	m    *fabric.Multipath
	off  int64
	data []byte
	seed byte
}

func (h *hostIO) write(ctx context.Context, t *testing.T) {
	t.Helper()
	h.seed++
	h.data = bytes.Repeat([]byte{h.seed, byte(h.off >> 12)}, 32<<10)
	require.NoError(t, h.m.WriteAt(ctx, 1, h.data, h.off))
}

// reads requires that h reads back what it wrote, and what other wrote.
func (h *hostIO) reads(ctx context.Context, t *testing.T, other *hostIO, when string) {
	t.Helper()
	for _, x := range []*hostIO{h, other} {
		got := make([]byte, len(x.data))
		require.NoError(t, h.m.ReadAt(ctx, 1, got, x.off), when)
		require.True(t, bytes.Equal(x.data, got), "%s: data at %d", when, x.off)
	}
}

// Two hosts of one exporter both work across a switchover and a failover;
// a third is admitted on every controller by exp modify (the time it takes
// is logged), and a removed host loses access while the other keeps its
// data.
func TestExporterHostsAcrossSwitchoverAndFailover(t *testing.T) {
	c, _ := start(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api := c.API()
	_, err := api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 32 << 20,
		PhysicalSizeBytes: 32 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
	require.NoError(t, err)
	_, err = api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: hostNQN, HostNQNs: []string{hostNQN1}})
	require.NoError(t, err)
	_, err = api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp1", InitiatorNQN: hostNQN2})
	require.ErrorIs(t, err, vda.ErrFailedPrecondition, "a second exporter of the volume")
	exp := exported(t, api, 0)
	a := &hostIO{m: hostOf(t, exp, hostNQN), off: 1 << 20}
	b := &hostIO{m: hostOf(t, exp, hostNQN1), off: 5 << 20}
	a.write(ctx, t)
	b.write(ctx, t)
	a.reads(ctx, t, b, "host 0 at first")
	b.reads(ctx, t, a, "host 1 at first")

	// A host added is admitted on every controller.
	t0 := time.Now()
	_, err = api.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{AddHostNQNs: []string{hostNQN2}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return admitted(exp, hostNQN2) }, time.Minute, 5*time.Millisecond)
	t.Logf("exporter change: host added -> admitted on both controllers in %v", time.Since(t0))

	// Switchover to controller 1: both hosts keep reading and writing.
	_, err = api.SwitchoverDiskArray(ctx, "da0", 1)
	require.NoError(t, err)
	exp = exported(t, api, 1)
	a.reads(ctx, t, b, "host 0 after the switchover")
	b.reads(ctx, t, a, "host 1 after the switchover")
	a.write(ctx, t)
	b.write(ctx, t)

	// Failover: controller 1's node dies; controller 0 is promoted.
	da, err := api.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	primary, _ := da.Primary()
	c.Node(primary.CNName).Kill()
	exported(t, api, 0)
	a.reads(ctx, t, b, "host 0 after the failover")
	b.reads(ctx, t, a, "host 1 after the failover")
	a.write(ctx, t)
	b.write(ctx, t)

	// Host 1 removed: it loses access; host 0 keeps its data.
	_, err = api.ModifyExporter(ctx, "da0", "exp0", vda.ExporterUpdate{RemoveHostNQNs: []string{hostNQN1}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		return b.m.ReadAt(short, 1, make([]byte, 4096), b.off) != nil
	}, time.Minute, 10*time.Millisecond, "the removed host still reads")
	a.reads(ctx, t, b, "host 0 after host 1 was removed")
	a.write(ctx, t)
	exp, err = api.GetExporter(ctx, "da0", "exp0")
	require.NoError(t, err)
	require.Equal(t, []string{hostNQN, hostNQN2}, exp.HostNQNs)
}
