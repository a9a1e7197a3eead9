package agent

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

const cnTestHost2 = "nqn.2016-06.io.example:host-h2"

// cnStateHosts is controller i's state with the exporter's hosts given:
// initiator_nqn (may be "") and host_nqns.
func (cl *cnCluster) cnStateHosts(i int, initiator string, hosts ...string) *agentpb.CnState {
	st := cl.cnState(i)
	e := st.Cntlrs[0].Exps[0]
	e.InitiatorNqn, e.HostNqns = initiator, hosts
	return st
}

// syncHosts syncs every controller (primary first) with the given hosts.
func (cl *cnCluster) syncHosts(initiator string, hosts ...string) {
	cl.t.Helper()
	cl.cns[cl.primary].syncCNOK(cl.cnStateHosts(cl.primary, initiator, hosts...))
	for i, cn := range cl.cns {
		if i != cl.primary {
			cn.syncCNOK(cl.cnStateHosts(i, initiator, hosts...))
		}
	}
}

// dialAs connects host to the exporter through controller i's CN.
func (cl *cnCluster) dialAs(i int, host string) (*fabric.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := fabric.Dial(ctx, cl.cns[i].tcpTrid(), string(cl.nqn), host)
	if err == nil {
		cl.t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, err
}

// Two hosts on one exporter: every controller admits both (the primary
// also its secondaries), both read and write the same namespace; removing
// one drops its connections on every controller and refuses it after,
// while the other keeps its data; a resync then changes nothing.
func TestCNExporterHostsConverge(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 3)
	cl.build()
	cl.syncHosts(cnTestInitiator, cnTestInitiator, cnTestHost2)
	for i, cn := range cl.cns {
		want := []string{cnTestInitiator, cnTestHost2}
		if i == cl.primary {
			for j, id := range cl.cntlrs {
				if j != i {
					want = append(want, string(nvmeof.HostNQN(id)))
				}
			}
		}
		require.ElementsMatch(t, want, cnHostNQNs(cn.subsystem(cl.nqn)), "controller %d", i)
	}

	data := cnPattern(256<<10, 0x3c)
	var h2 []*fabric.Conn
	for i := range cl.cns {
		conn, err := cl.dialAs(i, cnTestHost2)
		require.NoError(t, err, "host 2 through controller %d", i)
		h2 = append(h2, conn)
	}
	cnWrite(t, h2[1], data)
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(2), len(data))), "host 1 reads what host 2 wrote")
	h1 := cl.host(0)

	// Remove host 2: given as initiator_nqn-less host_nqns this time.
	for _, cn := range cl.cns {
		cn.fake.ResetCounts()
	}
	cl.syncHosts("", cnTestInitiator)
	for i, conn := range h2 {
		select {
		case <-conn.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("host 2's connection through controller %d survived its removal", i)
		}
		_, err := cl.dialAs(i, cnTestHost2)
		require.Error(t, err, "controller %d admits a removed host", i)
		require.EqualValues(t, 1, cl.cns[i].fake.RPCCount("nvmf_subsystem_remove_host"), "controller %d", i)
		require.Zero(t, cl.cns[i].fake.RPCCount("nvmf_delete_subsystem"), "the subsystem stays for the other host")
	}
	select {
	case <-h1.Done():
		t.Fatal("the remaining host was disconnected")
	default:
	}
	require.True(t, bytes.Equal(data, cnRead(t, h1, len(data))), "the remaining host keeps its data")

	for _, cn := range cl.cns {
		cn.fake.ResetCounts()
	}
	cl.syncHosts("", cnTestInitiator)
	for i, cn := range cl.cns {
		require.Empty(t, cn.mutations(), "controller %d", i)
	}
}

// Both hosts of an exporter keep working across a failover (the promoted
// controller's subsystem keeps both hosts).
func TestCNExporterHostsSurviveFailover(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	cl.build()
	cl.syncHosts(cnTestInitiator, cnTestHost2)
	data := cnPattern(128<<10, 0x71)
	h2, err := cl.dialAs(1, cnTestHost2)
	require.NoError(t, err)
	cnWrite(t, h2, data)

	cl.cns[0].fake.Crash()
	cl.down[0] = true
	cl.primary, cl.epoch = 1, cl.epoch+1
	cl.syncDNs()
	cl.cns[1].syncCNOK(cl.cnStateHosts(1, cnTestInitiator, cnTestHost2))
	require.ElementsMatch(t, []string{cnTestInitiator, cnTestHost2, string(nvmeof.HostNQN(cl.cntlrs[0]))},
		cnHostNQNs(cl.cns[1].subsystem(cl.nqn)))
	require.True(t, bytes.Equal(data, cnRead(t, cl.host(1), len(data))), "host 1 through the promoted controller")
	again, err := cl.dialAs(1, cnTestHost2)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, cnRead(t, again, len(data))), "host 2 through the promoted controller")
}

func TestCNExporterHostsSpecValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		initiator string
		hosts     []string
		want      string
	}{
		"no host":       {"", nil, "no host"},
		"bad host":      {"", []string{"nqn.x"}, "host NQN"},
		"reserved host": {cnTestInitiator, []string{"nqn.2016-06.io.spdk:vda-h-0123"}, "reserved"},
		"too many":      {cnTestInitiator, make([]string, cnMaxExpHosts+1), "at most 64"},
	} {
		t.Run(name, func(t *testing.T) {
			x := cnValidateExp(&agentpb.ExpSpec{Id: nvmeof.NewID(), PortId: "p", Nqn: "nqn.2016-06.io.spdk:vda-exp-da0-exp0",
				InitiatorNqn: tc.initiator, HostNqns: tc.hosts}, true)
			require.ErrorIs(t, x.err, errCNSpec)
			require.ErrorContains(t, x.err, tc.want)
		})
	}
	x := cnValidateExp(&agentpb.ExpSpec{Id: nvmeof.NewID(), PortId: "p", Nqn: "nqn.2016-06.io.spdk:vda-exp-da0-exp0",
		InitiatorNqn: cnTestInitiator, HostNqns: []string{cnTestHost2, cnTestInitiator}}, false)
	require.NoError(t, x.err)
	require.Equal(t, []string{cnTestInitiator, cnTestHost2}, x.hosts(false), "the initiator is one more host, counted once")
}

// BenchmarkCNExporterHostAdd measures an exporter change on the fake: a
// host added, then admitted on every controller (one sync of each CN,
// primary first, as the monitor pushes them).
func BenchmarkCNExporterHostAdd(b *testing.B) {
	cl := newCNCluster(b, 2, 2, 3)
	cl.build()
	hosts := []string{cnTestInitiator, cnTestHost2}
	for b.Loop() {
		hosts[1] = map[bool]string{true: cnTestHost2, false: cnTestHost2 + "x"}[hosts[1] != cnTestHost2]
		for i := range cl.cns {
			cl.cns[i].syncCNOK(cl.cnStateHosts(i, "", hosts...))
		}
	}
}
