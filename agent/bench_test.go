package agent

import (
	"context"
	"testing"
	"time"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
)

// benchState is 1000 VDs of 4 MiB on 10 malloc PDs of 512 MiB (127 data
// clusters each), across 100 DAs.
func benchState() *agentpb.DnState {
	st := &agentpb.DnState{}
	cntlr := nvmeof.NewID()
	var da string
	for p := range 10 {
		pd := mallocPD(nvmeof.NewID(), 512<<20)
		for v := range 100 {
			if (p*100+v)%10 == 0 {
				da = nvmeof.NewID()
			}
			pd.Vds = append(pd.Vds, vdSpec(nvmeof.NewID(), da, cntlr, 1, 4))
		}
		st.Pds = append(st.Pds, pd)
	}
	return st
}

func benchSync(b *testing.B, e *dnEnv, st *agentpb.DnState) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, o := range e.dn.sync(ctx, st) {
		if !o.Ok {
			b.Fatalf("%s %s: %s", o.Kind, o.Id, o.Error)
		}
	}
}

// BenchmarkDNSync1000VDsFromEmpty: a disk node with 1000 VDs built from an
// empty spdk_tgt (fake), and the SPDK calls it takes.
func BenchmarkDNSync1000VDsFromEmpty(b *testing.B) {
	st := benchState()
	var rpcs, writes int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newDNEnvRecorded(b, false)
		e.fake.ResetCounts()
		b.StartTimer()
		benchSync(b, e, st)
		b.StopTimer()
		rpcs += e.fake.TotalRPCs()
		for _, n := range e.mutationCalls() {
			writes += n
		}
		e.fake.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rpcs)/float64(b.N), "rpcs/op")
	b.ReportMetric(float64(writes)/float64(b.N), "writes/op")
}

// BenchmarkDNResync1000VDsNoop: the same node synced again, unchanged: only
// reads.
func BenchmarkDNResync1000VDsNoop(b *testing.B) {
	st := benchState()
	e := newDNEnvRecorded(b, false)
	benchSync(b, e, st)
	e.fake.ResetCounts()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		benchSync(b, e, st)
	}
	b.StopTimer()
	if w := e.mutationCalls(); len(w) > 0 {
		b.Fatalf("a no-op resync wrote: %v", w)
	}
	b.ReportMetric(float64(e.fake.TotalRPCs())/float64(b.N), "rpcs/op")
}
