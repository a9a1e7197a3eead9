package vda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
)

// Benchmarks of issue 18 (the create path at scale). They use only the
// public API and the store layout, so the same file runs against older
// versions of the package for before/after figures (with a
// portalCluster that leaves out what they lack: bench_portal_test.go).

// loadCluster writes dns DNs (in 8 locations), pds PDs (64 GiB malloc,
// spread over the DNs) and cns CNs straight into the store, many keys per
// transaction: creating 100,000 PDs one API call at a time would take
// longer than the benchmark.
func loadCluster(b *testing.B, s store.Store, dns, pds, cns int) {
	ctx := context.Background()
	var ops []store.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		res, err := s.Txn(ctx, store.Txn{Ops: ops})
		require.NoError(b, err)
		require.True(b, res.Succeeded)
		ops = nil
	}
	put := func(key string, v any) {
		val, err := json.Marshal(v)
		require.NoError(b, err)
		ops = append(ops, store.Op{Key: key, Value: val})
		if len(ops) == store.MaxTxnOps {
			flush()
		}
	}
	dnName := func(i int) string { return fmt.Sprintf("dn%06d", i) }
	for i := range dns {
		put(vda.KeyDN(dnName(i)), vda.DiskNode{ID: fmt.Sprintf("%032x", i+1), Name: dnName(i),
			Listener: listener(nodeIP(0, i), "4420"), Location: fmt.Sprintf("rack%d", i%8), PDCount: (pds - i + dns - 1) / dns})
	}
	for i := range pds {
		dn := i % dns
		put(vda.KeyPD(dnName(dn), fmt.Sprintf("pd%06d", i)), vda.PhysicalDisk{ID: fmt.Sprintf("%032x", 1<<40+i), Name: fmt.Sprintf("pd%06d", i),
			DNName: dnName(dn), DNID: fmt.Sprintf("%032x", dn+1), Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: 64 << 30}})
	}
	for i := range cns {
		put(vda.KeyCN(fmt.Sprintf("cn%06d", i)), vda.ControllerNode{ID: fmt.Sprintf("%032x", 2<<40+i), Name: fmt.Sprintf("cn%06d", i),
			Listener: listener(nodeIP(1, i), "4430"), Location: fmt.Sprintf("rack%d", i%8)})
	}
	flush()
}

var benchStores = []struct {
	name string
	open func(testing.TB) store.Store
}{{"memstore", newStore}, {"etcd", openEmbedded}}

// BenchmarkCreateAtScale is one client creating DAs (2 VDs, 2
// controllers) in clusters of 100 to 100,000 PDs on 4 PDs per DN and one
// CN per 20 PDs. The first create (which loads the candidate cache, where
// there is one) is not timed.
func BenchmarkCreateAtScale(b *testing.B) {
	for _, st := range benchStores {
		for _, pds := range []int{100, 1000, 10000, 100000} {
			b.Run(fmt.Sprintf("%s/pds=%d", st.name, pds), func(b *testing.B) {
				s := st.open(b)
				loadCluster(b, s, pds/4, pds, max(pds/20, 4))
				c := newCluster(b, s)
				ctx := context.Background()
				_, err := c.CreateDiskArray(ctx, daSpec("warmup"))
				require.NoError(b, err)
				var l latencies
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					t0 := time.Now()
					_, err := c.CreateDiskArray(ctx, daSpec(fmt.Sprintf("da%07d", i)))
					require.NoError(b, err)
					l.add(time.Since(t0))
				}
				l.report(b, time.Since(start))
			})
		}
	}
}

// runClients makes b.N creates with n concurrent clients; create(i)
// makes the i-th.
func runClients(b *testing.B, n int, create func(i int64) error) {
	var l latencies
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := create(i); err != nil {
					b.Error(err)
					return
				}
				l.add(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	l.report(b, time.Since(start))
}

// BenchmarkCreateClients is 1, 8 and 16 concurrent clients of one Cluster
// (the Go API) creating DAs in a cluster of 100 DNs (8 locations), 400
// PDs and 20 CNs.
func BenchmarkCreateClients(b *testing.B) {
	for _, st := range benchStores {
		for _, clients := range []int{1, 8, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", st.name, clients), func(b *testing.B) {
				s := st.open(b)
				loadCluster(b, s, 100, 400, 20)
				c := newCluster(b, s)
				ctx := context.Background()
				_, err := c.CreateDiskArray(ctx, daSpec("warmup"))
				require.NoError(b, err)
				runClients(b, clients, func(i int64) error {
					_, err := c.CreateDiskArray(ctx, daSpec(fmt.Sprintf("da%07d", i)))
					return err
				})
			})
		}
	}
}

// servePortal starts the k-th portal (its own Cluster, configured as
// vda-portal configures it: see portalCluster) over s on 127.0.0.1:0 and
// returns a client connected to it over the socket.
func servePortal(b *testing.B, s store.Store, k int) pb.PortalClient {
	srv, err := portal.New(portal.Config{Cluster: portalCluster(b, s, k), Insecure: true})
	require.NoError(b, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() {
		_ = conn.Close()
		cancel()
		require.NoError(b, <-done)
	})
	return pb.NewPortalClient(conn)
}

func createDaRequest(name string) *pb.CreateDaRequest {
	return &pb.CreateDaRequest{DaName: name, CntlrCnt: 2, DaSize: 32 << 20, DaConf: `{"stripe_count":2,"stripe_size_kb":64}`}
}

// BenchmarkCreatePortal is clients creating DAs through the gRPC portal
// over a TCP socket, with one portal or two (each its own Cluster) on one
// store; clients alternate between the portals. Clusters of 400 and of
// 100,000 PDs. Besides DAs/s and latencies it reports the store
// transactions per create and, of those, the ones that failed a guard
// (conflicts: another create, of this portal or another, changed a key
// the transaction was conditioned on).
func BenchmarkCreatePortal(b *testing.B) {
	for _, st := range benchStores {
		for _, pds := range []int{400, 100000} {
			for _, portals := range []int{1, 2} {
				for _, clients := range []int{1, 16} {
					if pds > 400 && (portals > 1 || clients > 1) {
						continue
					}
					b.Run(fmt.Sprintf("%s/pds=%d/portals=%d/clients=%d", st.name, pds, portals, clients), func(b *testing.B) {
						s := st.open(b)
						loadCluster(b, s, pds/4, pds, max(pds/20, 4))
						cs := &txnCountingStore{Store: s}
						ctx := context.Background()
						var ps []pb.PortalClient
						for k := range portals {
							p := servePortal(b, cs, k)
							_, err := p.CreateDa(ctx, createDaRequest(fmt.Sprintf("warmup%d", k)))
							require.NoError(b, err)
							ps = append(ps, p)
						}
						cs.txns.Store(0)
						cs.failed.Store(0)
						runClients(b, clients, func(i int64) error {
							_, err := ps[int(i)%portals].CreateDa(ctx, createDaRequest(fmt.Sprintf("da%07d", i)))
							return err
						})
						b.ReportMetric(float64(cs.txns.Load())/float64(b.N), "txns/create")
						b.ReportMetric(float64(cs.failed.Load())/float64(b.N), "conflicts/create")
					})
				}
			}
		}
	}
}

// BenchmarkCreateScaleRatio is one client creating DAs (2 VDs, 2
// controllers) in a cluster of 100 PDs and in one of 100,000 PDs (each
// on its own store, loaded as in BenchmarkCreateAtScale), through the Go
// API or through the gRPC portal over TCP. Both clusters live in one
// process and are measured in alternating rounds (which size goes first
// alternates too), so a noisy stretch of the machine lands on both sizes
// instead of deciding the ratio: each round makes b.N/18 creates per
// size, and the benchmark reports the median over 9 rounds of the ratio
// of the large cluster's p50 to the small one's (p50-ratio), the same for
// the time per create (tpc-ratio), and each size's median p50.
func BenchmarkCreateScaleRatio(b *testing.B) {
	const rounds = 9
	sizes := []int{100, 100000}
	for _, st := range benchStores {
		for _, via := range []string{"api", "portal"} {
			b.Run(st.name+"/"+via, func(b *testing.B) {
				ctx := context.Background()
				creates := make([]func(name string) error, len(sizes))
				for k, pds := range sizes {
					s := st.open(b)
					loadCluster(b, s, pds/4, pds, max(pds/20, 4))
					if via == "api" {
						c := newCluster(b, s)
						creates[k] = func(name string) error {
							_, err := c.CreateDiskArray(ctx, daSpec(name))
							return err
						}
					} else {
						p := servePortal(b, s, 0)
						creates[k] = func(name string) error {
							_, err := p.CreateDa(ctx, createDaRequest(name))
							return err
						}
					}
					require.NoError(b, creates[k]("warmup"))
				}
				per := max(b.N/(rounds*len(sizes)), 1)
				var p50Ratio, tpcRatio []float64
				p50s := make([][]float64, len(sizes))
				n := 0
				b.ResetTimer()
				for r := range rounds {
					p50 := make([]time.Duration, len(sizes))
					tpc := make([]time.Duration, len(sizes))
					for j := range sizes {
						k := (j + r) % len(sizes)
						d := make([]time.Duration, 0, per)
						start := time.Now()
						for range per {
							t0 := time.Now()
							require.NoError(b, creates[k](fmt.Sprintf("da%07d", n)))
							d = append(d, time.Since(t0))
							n++
						}
						tpc[k] = time.Since(start) / time.Duration(per)
						slices.Sort(d)
						p50[k] = d[len(d)/2]
						p50s[k] = append(p50s[k], float64(p50[k].Microseconds()))
					}
					p50Ratio = append(p50Ratio, float64(p50[1])/float64(p50[0]))
					tpcRatio = append(tpcRatio, float64(tpc[1])/float64(tpc[0]))
				}
				b.ReportMetric(median(p50Ratio), "p50-ratio")
				b.ReportMetric(median(tpcRatio), "tpc-ratio")
				b.ReportMetric(median(p50s[0]), "p50-µs-100")
				b.ReportMetric(median(p50s[1]), "p50-µs-100000")
			})
		}
	}
}

// txnCountingStore counts the transactions it passes on, and those that
// failed a condition.
type txnCountingStore struct {
	store.Store
	txns, failed atomic.Int64
}

func (s *txnCountingStore) Txn(ctx context.Context, t store.Txn) (store.TxnResult, error) {
	res, err := s.Store.Txn(ctx, t)
	s.txns.Add(1)
	if err == nil && !res.Succeeded {
		s.failed.Add(1)
	}
	return res, err
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}
