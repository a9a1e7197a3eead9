package vda_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/store"
)

// benchCluster adds dns DNs with pds PDs (64 GiB malloc, room for
// thousands of VDs) spread over them, and cns CNs.
func benchCluster(b *testing.B, c *vda.Cluster, dns, pds, cns int) {
	ctx := context.Background()
	for i := range dns {
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("dn%05d", i), Listener: listener(nodeIP(0, i), "4420"), Location: fmt.Sprintf("rack%d", i%8)})
		require.NoError(b, err)
	}
	for i := range pds {
		_, err := c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: fmt.Sprintf("dn%05d", i%dns), Name: fmt.Sprintf("pd%05d", i),
			Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 64 << 30}})
		require.NoError(b, err)
	}
	for i := range cns {
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: fmt.Sprintf("cn%05d", i), Listener: listener(nodeIP(1, i), "4430")})
		require.NoError(b, err)
	}
}

// latencies collects per-op durations and reports p50/p99 and ops/s.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	slices.Sort(l.d)
	if len(l.d) == 0 {
		return
	}
	b.ReportMetric(float64(l.d[len(l.d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(len(l.d))/elapsed.Seconds(), "DAs/s")
}

func daSpec(name string) vda.DiskArraySpec {
	return vda.DiskArraySpec{Name: name, CntlrCount: 2, SizeBytes: 32 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}}
}

// BenchmarkCreateDiskArray: 100 DNs, 400 PDs, 20 CNs; one client, then
// 8 concurrent clients through 2 Clusters.
func BenchmarkCreateDiskArray(b *testing.B) {
	for name, open := range map[string]func(testing.TB) store.Store{"memstore": newStore, "etcd": openEmbedded} {
		b.Run(name+"/serial", func(b *testing.B) {
			c := newCluster(b, open(b))
			benchCluster(b, c, 100, 400, 20)
			var l latencies
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				t0 := time.Now()
				_, err := c.CreateDiskArray(context.Background(), daSpec(fmt.Sprintf("da%07d", i)))
				require.NoError(b, err)
				l.add(time.Since(t0))
			}
			l.report(b, time.Since(start))
		})
		b.Run(name+"/parallel8", func(b *testing.B) {
			s := open(b)
			cs := []*vda.Cluster{newCluster(b, s), newCluster(b, s)}
			benchCluster(b, cs[0], 100, 400, 20)
			var l latencies
			var n atomic.Int64
			b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 clients
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					t0 := time.Now()
					_, err := cs[i%2].CreateDiskArray(context.Background(), daSpec(fmt.Sprintf("da%07d", i)))
					if err != nil {
						b.Error(err)
						return
					}
					l.add(time.Since(t0))
				}
			})
			l.report(b, time.Since(start))
		})
	}
}

// BenchmarkDefaultPlacer is the placement decision over 1k and 10k PDs as
// Cluster makes it: the adapter to package alloc plus alloc.Default (whose
// own benchmark, alloc.BenchmarkDefault, leaves the adapter out).
func BenchmarkDefaultPlacer(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("pds=%d", n), func(b *testing.B) {
			c := vda.Candidates{DNs: map[string]vda.DiskNode{}}
			for i := range n / 4 {
				name := fmt.Sprintf("dn%05d", i)
				c.DNs[name] = vda.DiskNode{Name: name, Location: fmt.Sprintf("rack%d", i%8)}
			}
			for i := range n {
				c.PDs = append(c.PDs, vda.PhysicalDisk{Name: fmt.Sprintf("pd%05d", i), DNName: fmt.Sprintf("dn%05d", i%(n/4)),
					Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 64 << 30}, AllocatedBytes: uint64(i%7) << 20})
			}
			for i := range n / 20 {
				c.CNs = append(c.CNs, vda.ControllerNode{Name: fmt.Sprintf("cn%05d", i), CntlrCount: i % 5, Location: fmt.Sprintf("rack%d", i%8)})
			}
			req := vda.PlacementRequest{StripeCount: 4, CntlrCount: 2, VDSizeBytes: 20 << 20, Name: "da"}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := (vda.DefaultPlacer{}).Place(req, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreateDiskArrayPDs is a whole create (read candidates, place,
// commit) on memstore with 1k and 10k PDs.
func BenchmarkCreateDiskArrayPDs(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("pds=%d", n), func(b *testing.B) {
			c := newCluster(b, newStore(b))
			benchCluster(b, c, n/4, n, n/20)
			b.ResetTimer()
			for i := range b.N {
				_, err := c.CreateDiskArray(context.Background(), daSpec(fmt.Sprintf("da%07d", i)))
				require.NoError(b, err)
			}
		})
	}
}
