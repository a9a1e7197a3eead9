package agent

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// cnPromoBench is n arrays of 2 VDs (one on each of 2 disk nodes) with 2
// controllers each: controller 0 on CN 0 (the primary), controller 1 on CN
// 1 (the secondary, re-exporting CN 0's exports). The arrays are shaped
// like the monitor's failover benchmark: 32 MiB, 4 MiB clusters (the
// lvstore metadata takes one), 64 KiB strips.
type cnPromoBench struct {
	dns, cns []*cnNodeEnv
	das      []cnPromoDA
	primary  int
	epoch    int64
}

const (
	cnPromoDABytes      = 32 << 20
	cnPromoClusterBytes = 4 << 20
	cnPromoVDBytes      = 20 << 20 // half of the DA, its metadata cluster and a margin
)

type cnPromoDA struct {
	da, exp string
	nqn     nvmeof.NQN
	vds     [2]string // VD i on DN i
	cntlrs  [2]string // controller i on CN i
	ports   [2]string
}

// newCNPromoBench builds every array with CN 0 as primary and CN 1 as its
// secondary; with rtt, CN 1 talks to its SPDK through the 4 ms poll proxy.
func newCNPromoBench(b testing.TB, n int, rtt bool) *cnPromoBench {
	b.Helper()
	pb := &cnPromoBench{dns: []*cnNodeEnv{newDNEnvForCN(b), newDNEnvForCN(b)},
		cns: []*cnNodeEnv{newCNEnv(b), newCNEnv(b)}, epoch: 1}
	if rtt {
		s := pb.cns[1]
		c, err := spdk.Dial(context.Background(), cnPollProxy(b, s.fake.SockPath(), 4*time.Millisecond))
		require.NoError(b, err)
		b.Cleanup(func() { _ = c.Close() })
		s.c, s.cn = c, newCNNode(c, s.listener, nil)
	}
	for i := range n {
		nqn, err := nvmeof.ExpNQN(fmt.Sprintf("da%d", i), "exp0")
		require.NoError(b, err)
		pb.das = append(pb.das, cnPromoDA{da: nvmeof.NewID(), exp: nvmeof.NewID(), nqn: nqn,
			vds:    [2]string{nvmeof.NewID(), nvmeof.NewID()},
			cntlrs: [2]string{nvmeof.NewID(), nvmeof.NewID()}, ports: [2]string{nvmeof.NewID(), nvmeof.NewID()}})
	}
	pb.syncDNs()
	cnBenchRequireInit(b, pb.cns[0].syncCN(pb.cnState(0, false)))
	cnPromoRequireOK(b, pb.cns[0].syncCN(pb.cnState(0, true)), n)
	cnPromoRequireOK(b, pb.cns[1].syncCN(pb.cnState(1, true)), n)
	return pb
}

// cnBenchRequireInit requires every controller to be built with its lvstore
// (its exporters wait for the initialization to be committed).
func cnBenchRequireInit(b testing.TB, out []*agentpb.ObjectStatus) {
	b.Helper()
	for _, o := range out {
		if o.GetKind() == agentpb.Kind_KIND_CNTLR {
			require.True(b, o.GetOk() && o.GetDaInitialized(), o.GetError())
		}
	}
}

// syncDNs makes every VD admit the current primary's controller.
func (pb *cnPromoBench) syncDNs() {
	for d, dn := range pb.dns {
		pd := &agentpb.PdSpec{Id: fmt.Sprint("pd", d), Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{
			SizeBytes: uint64(len(pb.das)+8) * cnPromoVDBytes}}}
		for _, x := range pb.das {
			pd.Vds = append(pd.Vds, &agentpb.VdSpec{Id: x.vds[d], DaId: x.da, Epoch: pb.epoch, SizeBytes: cnPromoVDBytes,
				HostNqn: string(nvmeof.PrimaryHostNQN(x.cntlrs[pb.primary], uint64(pb.epoch)))})
		}
		dn.syncDNOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{pd}})
	}
}

// cnState is CN i's desired state: controller i of every array.
func (pb *cnPromoBench) cnState(i int, initialized bool) *agentpb.CnState {
	st := &agentpb.CnState{}
	p := pb.primary
	for _, x := range pb.das {
		c := &agentpb.CntlrSpec{CntlrId: x.cntlrs[i], CntlrIdx: uint32(i), Primary: i == p, Epoch: pb.epoch,
			Da: &agentpb.DaSpec{Id: x.da, SizeBytes: cnPromoDABytes, ClusterBytes: cnPromoClusterBytes, StripeSizeKb: 64,
				Initialized: initialized}}
		exp := &agentpb.ExpSpec{Id: x.exp, PortId: x.ports[i], Nqn: string(x.nqn), InitiatorNqn: cnTestInitiator}
		c.Exps = []*agentpb.ExpSpec{exp}
		if i == p {
			for d, dn := range pb.dns {
				c.Vds = append(c.Vds, &agentpb.VdRef{Id: x.vds[d], Idx: uint32(d), DnListener: cnTransport(dn.listener)})
			}
			exp.SecondaryHostNqns = []string{string(nvmeof.HostNQN(x.cntlrs[1-p]))}
		} else {
			c.PrimaryCntlrId = x.cntlrs[p]
			c.PrimaryListener = cnTransport(pb.cns[p].listener)
		}
		st.Cntlrs = append(st.Cntlrs, c)
	}
	return st
}

// benchProfile starts a CPU profile of the timed part when
// VDA_BENCH_CPUPROFILE names a file (one file per call, numbered; mutex and
// block profiles of the same span beside it) and returns its stop.
func benchProfile(b *testing.B) func() {
	path := os.Getenv("VDA_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	benchProfiles++
	f, err := os.Create(fmt.Sprintf("%s.%s.%d", path, strings.ReplaceAll(b.Name(), "/", "_"), benchProfiles))
	require.NoError(b, err)
	require.NoError(b, pprof.StartCPUProfile(f))
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	return func() {
		pprof.StopCPUProfile()
		require.NoError(b, f.Close())
		for _, p := range []string{"mutex", "block"} {
			f, err := os.Create(fmt.Sprintf("%s.%s.%s.%d", path, p, strings.ReplaceAll(b.Name(), "/", "_"), benchProfiles))
			require.NoError(b, err)
			require.NoError(b, pprof.Lookup(p).WriteTo(f, 0))
			require.NoError(b, f.Close())
		}
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
	}
}

var benchProfiles int

// BenchmarkCNPromotionMany: the CN side of a failover of many arrays at
// once. CN 0's SPDK is gone and the disk nodes admit CN 1; timed: CN 1's
// one sync that promotes every array (export controllers dropped, VDs
// attached, raids assembled and examined, lvstores found, namespaces
// swapped, ANA optimized).
func BenchmarkCNPromotionMany(b *testing.B) {
	for _, bc := range []struct {
		das int
		rtt bool
	}{{100, false}, {1000, false}, {1000, true}} {
		b.Run(fmt.Sprintf("das=%d/%s", bc.das, map[bool]string{false: "fake", true: "rtt8ms"}[bc.rtt]), func(b *testing.B) {
			rpcs := 0
			for b.Loop() {
				b.StopTimer()
				pb := newCNPromoBench(b, bc.das, bc.rtt)
				pb.cns[0].fake.Crash()
				pb.primary, pb.epoch = 1, pb.epoch+1
				pb.syncDNs()
				s := pb.cns[1]
				s.fake.ResetCounts()
				stop := benchProfile(b)
				b.StartTimer()
				out := s.syncCN(pb.cnState(1, true))
				b.StopTimer()
				stop()
				cnPromoRequireOK(b, out, bc.das)
				rpcs += s.fake.TotalRPCs()
				if os.Getenv("VDA_BENCH_RPCS") != "" { // the promotion's RPCs by method
					for _, m := range s.fake.CalledMethods() {
						fmt.Fprintln(os.Stderr, "RPC", m, s.fake.RPCCount(m))
					}
				}
				for _, e := range append(pb.dns, pb.cns...) {
					e.fake.Crash()
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(rpcs)/float64(b.N), "rpcs/op")
			b.ReportMetric(float64(rpcs)/float64(b.N)/float64(bc.das), "rpcs/da")
		})
	}
}

func cnPromoRequireOK(b testing.TB, out []*agentpb.ObjectStatus, das int) {
	b.Helper()
	require.Len(b, out, 2*das)
	for _, o := range out {
		require.True(b, o.GetOk(), "%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
	}
}
