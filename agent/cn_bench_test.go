package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// Benchmarks of a CN hosting cnBenchDAs primaries (2 VDs each, one
// exporter). Run them with
//
//	go test -run '^$' -bench BenchmarkCN -benchtime 3x ./agent/
//
// The "fake" variants talk to the fake directly (microsecond round trips);
// the "rtt8ms" variants put a proxy in front of it that passes bytes in
// each direction every 4 ms, as real SPDK's 4 ms RPC poll does (a lone
// request then costs ~8 ms, pipelined requests share the polls).
const (
	cnBenchDAs     = 500
	cnBenchVDBytes = 4 << 20
	cnBenchDABytes = 4 << 20
)

// cnBench is a set of disk nodes exporting das arrays' VDs, whose
// lvstores were created once by a first controller node.
type cnBench struct {
	dns    []*cnNodeEnv
	cntlrs []*agentpb.CntlrSpec
}

func newCNBench(b testing.TB, das int) *cnBench {
	b.Helper()
	bn := newCNBenchSpecs(b, das)
	first := newCNEnv(b)
	for _, o := range first.syncCN(bn.state()) {
		if o.GetKind() == agentpb.Kind_KIND_CNTLR {
			require.True(b, o.GetOk() && o.GetDaInitialized(), o.GetError())
		}
	}
	for _, c := range bn.cntlrs {
		c.Da.Initialized = true
	}
	first.fake.Crash() // its connections to the DNs go; the arrays stay on the VDs
	return bn
}

// newCNBenchSpecs is newCNBench's disk nodes, with the VDs exported, and
// the arrays' specs, never built.
func newCNBenchSpecs(b testing.TB, das int) *cnBench {
	b.Helper()
	bn := &cnBench{dns: []*cnNodeEnv{newDNEnvForCN(b), newDNEnvForCN(b)}}
	pds := []*agentpb.PdSpec{}
	for range bn.dns {
		pds = append(pds, &agentpb.PdSpec{Id: nvmeof.NewID(), Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{
			SizeBytes: uint64(das+8) * cnBenchVDBytes}}})
	}
	for i := range das {
		c := &agentpb.CntlrSpec{CntlrId: nvmeof.NewID(), Primary: true, Epoch: 1,
			Da: &agentpb.DaSpec{Id: nvmeof.NewID(), SizeBytes: cnBenchDABytes, ClusterBytes: 1 << 20, StripeSizeKb: 64}}
		nqn, err := nvmeof.ExpNQN(fmt.Sprintf("da%d", i), "exp0")
		require.NoError(b, err)
		c.Exps = []*agentpb.ExpSpec{{Id: nvmeof.NewID(), PortId: nvmeof.NewID(), Nqn: string(nqn), InitiatorNqn: cnTestInitiator}}
		for d, dn := range bn.dns {
			vd := nvmeof.NewID()
			c.Vds = append(c.Vds, &agentpb.VdRef{Id: vd, Idx: uint32(d), DnListener: cnTransport(dn.listener)})
			pds[d].Vds = append(pds[d].Vds, &agentpb.VdSpec{Id: vd, DaId: c.Da.Id, Epoch: 1, SizeBytes: cnBenchVDBytes,
				HostNqn: string(nvmeof.PrimaryHostNQN(c.CntlrId, 1))})
		}
		bn.cntlrs = append(bn.cntlrs, c)
	}
	for d, dn := range bn.dns {
		dn.syncDNOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{pds[d]}})
	}
	return bn
}

func (bn *cnBench) state() *agentpb.CnState { return &agentpb.CnState{Cntlrs: bn.cntlrs} }

// newCN returns a fresh controller node, optionally behind the poll proxy.
func (bn *cnBench) newCN(b testing.TB, rtt bool) *cnNodeEnv {
	b.Helper()
	e := newCNEnv(b)
	if rtt {
		c, err := spdk.Dial(context.Background(), cnPollProxy(b, e.fake.SockPath(), 4*time.Millisecond))
		require.NoError(b, err)
		b.Cleanup(func() { _ = c.Close() })
		e.c = c
		e.cn = newCNNode(c, e.listener, nil)
	}
	return e
}

func (bn *cnBench) requireOK(b testing.TB, out []*agentpb.ObjectStatus) {
	b.Helper()
	require.Len(b, out, 2*len(bn.cntlrs))
	for _, o := range out {
		require.True(b, o.GetOk(), "%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
	}
}

// BenchmarkCNSyncFromEmpty: a CN's SPDK starts empty (a new or restarted
// node) and one sync brings up all its initialized arrays: 1000 VD
// attaches, 500 raids examined (lvstores found), 500 exporters.
func BenchmarkCNSyncFromEmpty(b *testing.B) {
	bn := newCNBench(b, cnBenchDAs)
	for _, rtt := range []bool{false, true} {
		b.Run(map[bool]string{false: "fake", true: "rtt8ms"}[rtt], func(b *testing.B) {
			rpcs := 0
			for b.Loop() {
				b.StopTimer()
				cn := bn.newCN(b, rtt)
				b.StartTimer()
				out := cn.syncCN(bn.state())
				b.StopTimer()
				bn.requireOK(b, out)
				rpcs += cn.fake.TotalRPCs()
				cn.fake.Crash()
				b.StartTimer()
			}
			b.ReportMetric(float64(rpcs)/float64(b.N), "rpcs/op")
			b.ReportMetric(float64(rpcs)/float64(b.N)/cnBenchDAs, "rpcs/da")
		})
	}
}

// BenchmarkCNBuildNew: a CN's sync builds new arrays (never initialized,
// the create path): 2 VDs attached, raid, lvstore and lvol made on each;
// their exporters wait for the arrays to be marked initialized. Each
// iteration has new disk nodes and arrays; the disk nodes' fakes serve the
// lvstores' writes in the same process.
func BenchmarkCNBuildNew(b *testing.B) {
	const das = 50
	rpcs := 0
	for b.Loop() {
		b.StopTimer()
		bn := newCNBenchSpecs(b, das)
		cn := newCNEnv(b)
		b.StartTimer()
		out := cn.syncCN(bn.state())
		b.StopTimer()
		for _, o := range out {
			if o.GetKind() == agentpb.Kind_KIND_CNTLR {
				require.True(b, o.GetOk() && o.GetDaInitialized(), o.GetError())
			}
		}
		rpcs += cn.fake.TotalRPCs()
		cn.fake.Crash()
		b.StartTimer()
	}
	b.ReportMetric(float64(rpcs)/float64(b.N)/das, "rpcs/da")
}

// BenchmarkCNResyncNoop: the same node synced again with nothing changed:
// only reads.
func BenchmarkCNResyncNoop(b *testing.B) {
	bn := newCNBench(b, cnBenchDAs)
	for _, rtt := range []bool{false, true} {
		b.Run(map[bool]string{false: "fake", true: "rtt8ms"}[rtt], func(b *testing.B) {
			cn := bn.newCN(b, rtt)
			bn.requireOK(b, cn.syncCN(bn.state()))
			cn.fake.ResetCounts()
			for b.Loop() {
				bn.requireOK(b, cn.syncCN(bn.state()))
			}
			require.Empty(b, cn.mutations())
			b.ReportMetric(float64(cn.fake.TotalRPCs())/float64(b.N), "rpcs/op")
		})
	}
}

// cnPollProxy serves a unix socket that forwards to target, passing the
// bytes waiting in each direction once per period: SPDK's RPC server
// polls its socket every 4 ms and answers what it read in that poll.
func cnPollProxy(b testing.TB, target string, period time.Duration) string {
	b.Helper()
	dir, err := os.MkdirTemp("", "cnpoll")
	require.NoError(b, err)
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "poll.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(b, err)
	var wg sync.WaitGroup
	b.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); cnPollCopy(up, c, period) }()
			go func() { defer wg.Done(); cnPollCopy(c, up, period) }()
		}
	}()
	return path
}

// cnPollCopy copies src to dst in bursts, one per period tick.
func cnPollCopy(dst, src net.Conn, period time.Duration) {
	defer dst.Close()
	defer src.Close()
	var mu sync.Mutex
	var buf []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		chunk := make([]byte, 64<<10)
		for {
			n, err := src.Read(chunk)
			mu.Lock()
			buf = append(buf, chunk[:n]...)
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-done:
		}
		mu.Lock()
		out := buf
		buf = nil
		mu.Unlock()
		if len(out) > 0 {
			if _, err := dst.Write(out); err != nil {
				return
			}
		}
		select {
		case <-done:
			return
		default:
		}
	}
}

// BenchmarkCNPromotion: the CN side of a failover. The primary's SPDK is
// gone and the DNs admit the secondary; timed: the secondary's promotion
// sync (drop the proxy, attach the VDs, raid, examine finds the lvstore,
// namespace swap, ANA optimized) and the host's first read through it.
func BenchmarkCNPromotion(b *testing.B) {
	for _, rtt := range []bool{false, true} {
		b.Run(map[bool]string{false: "fake", true: "rtt8ms"}[rtt], func(b *testing.B) {
			rpcs := 0
			for b.Loop() {
				b.StopTimer()
				cl := newCNCluster(b, 2, 2, 2)
				if rtt {
					s := cl.cns[1]
					c, err := spdk.Dial(context.Background(), cnPollProxy(b, s.fake.SockPath(), 4*time.Millisecond))
					require.NoError(b, err)
					b.Cleanup(func() { _ = c.Close() })
					s.c, s.cn = c, newCNNode(c, s.listener, nil)
				}
				cl.build()
				cl.cns[0].fake.Crash()
				cl.down[0] = true
				cl.primary, cl.epoch = 1, cl.epoch+1
				cl.syncDNs()
				s := cl.cns[1]
				s.fake.ResetCounts()
				b.StartTimer()
				s.syncCNOK(cl.cnState(1))
				conn := cl.host(1)
				_, err := conn.ReadAt(1, make([]byte, 4096), 0)
				b.StopTimer()
				require.NoError(b, err)
				rpcs += s.fake.TotalRPCs()
				b.StartTimer()
			}
			b.ReportMetric(float64(rpcs)/float64(b.N), "rpcs/op")
		})
	}
}
