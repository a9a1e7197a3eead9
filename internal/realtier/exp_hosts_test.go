package realtier

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/internal/realbench"
	"github.com/vda-io/vda/nvmeof/nvmetcp"
)

// TestRealExporterHosts: on real spdk_tgt (a disk node and a controller
// node, the agents driving them), one exporter admits two hosts; both
// write and read the same namespace; removing one disconnects it and
// refuses it after, while the other keeps reading what was written; a
// host added is admitted by one sync. The times of the exporter changes
// (one controller node sync each) are logged.
func TestRealExporterHosts(t *testing.T) {
	const (
		hostA = "nqn.2016-06.io.example:exp-host-a"
		hostB = "nqn.2016-06.io.example:exp-host-b"
		hostC = "nqn.2016-06.io.example:exp-host-c"
	)
	e := realbench.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dn := e.StartNode(realbench.NodeConfig{Role: agent.RoleDN})
	cn := e.StartNode(realbench.NodeConfig{Role: agent.RoleCN})
	l := realbench.NewLayout(1, 2, e.Listener("dn"))
	exp := l.CN.Cntlrs[0].Exps[0]
	exp.InitiatorNqn, exp.HostNqns = hostA, []string{hostB}
	require.NoError(t, dn.SyncDN(ctx, l.DN))
	require.NoError(t, cn.CreateArrays(ctx, l.CN))
	l.SetInitialized()
	require.NoError(t, cn.SyncCN(ctx, l.CN))
	t.Cleanup(func() {
		for _, n := range []*realbench.Node{dn, cn} {
			require.NoError(t, n.Crashed())
		}
	})

	addr := net.JoinHostPort(cn.Listener.TrAddr, cn.Listener.TrSvcID)
	connect := func(host string) (*nvmetcp.Controller, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := nvmetcp.Connect(cctx, addr, exp.Nqn, nvmetcp.Options{HostNQN: host, Dial: e.Dial("dn"),
			CommandTimeout: 5 * time.Second})
		if err == nil {
			t.Cleanup(func() { _ = c.Close() })
		}
		return c, err
	}
	a, err := connect(hostA)
	require.NoError(t, err)
	b, err := connect(hostB)
	require.NoError(t, err)
	dataA, dataB := bytes.Repeat([]byte{0xa1, 0x5a}, 64<<10), bytes.Repeat([]byte{0xb2, 0x4b}, 64<<10)
	const offA, offB = 0, 1 << 20
	require.NoError(t, a.WriteAt(ctx, 1, dataA, offA))
	require.NoError(t, b.WriteAt(ctx, 1, dataB, offB))
	read := func(c *nvmetcp.Controller, off int64, want []byte, who string) {
		t.Helper()
		got := make([]byte, len(want))
		require.NoError(t, c.ReadAt(ctx, 1, got, off), who)
		require.True(t, bytes.Equal(want, got), who)
	}
	read(a, offB, dataB, "host A reads what host B wrote")
	read(b, offA, dataA, "host B reads what host A wrote")

	// Remove host B: SPDK drops its connection, and refuses it after.
	exp.HostNqns = nil
	t0 := time.Now()
	require.NoError(t, cn.SyncCN(ctx, l.CN))
	t.Logf("exporter change on real SPDK: host removed in %v (one controller node sync)", time.Since(t0))
	select {
	case <-b.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("host B's connection survived its removal")
	}
	require.Error(t, b.ReadAt(ctx, 1, make([]byte, 4096), offB), "a removed host's I/O")
	_, err = connect(hostB)
	require.Error(t, err, "a removed host connects again")
	read(a, offA, dataA, "host A after B's removal")
	read(a, offB, dataB, "host A reads what B wrote before its removal")

	// Add host C: admitted once the sync returns.
	exp.HostNqns = []string{hostC}
	t0 = time.Now()
	require.NoError(t, cn.SyncCN(ctx, l.CN))
	c, err := connect(hostC)
	require.NoError(t, err)
	t.Logf("exporter change on real SPDK: host added and connected in %v", time.Since(t0))
	read(c, offA, dataA, "host C reads what A wrote")

	// A resync changes nothing.
	cn.Meter.Reset()
	require.NoError(t, cn.SyncCN(ctx, l.CN))
	require.NoError(t, realbench.CheckReadOnly(cn.Meter.Counts()))
}
