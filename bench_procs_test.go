package vda_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vda-io/vda"
	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/portal"
	"github.com/vda-io/vda/store"
	_ "github.com/vda-io/vda/store/etcdstore"
)

// The environment of a test binary started as a portal process: the
// store URI it serves, and its index k (its affinity is portal<k>).
const (
	portalProcEnv      = "VDA_BENCH_PORTAL_STORE"
	portalProcIndexEnv = "VDA_BENCH_PORTAL_INDEX"
)

// portalProfileEnv, when set, makes each portal process write a CPU
// profile of the timed creates (from "reset" to "stats") to <value>.p<k>.
const portalProfileEnv = "VDA_PORTAL_CPUPROFILE"

// portalCPUEnv sets the CPU quota of each portal process of
// BenchmarkCreatePortalProcs, in cores. The default, a quarter of a core,
// leaves the store and the clients most of a 2-core machine with two
// portals: at half a core each, on the shared 2-core machine of round 11,
// two portals did not get their quota.
const portalCPUEnv = "VDA_PORTAL_CPU"

const defaultPortalCPU = 0.25

// BenchmarkCreatePortalProcs is BenchmarkCreatePortal's etcd/pds=400,
// 16 clients, with each portal a process of its own, as in a deployment
// where every portal instance has a machine: the test binary started
// again as a portal server (TestMain), made as vda-portal makes it
// (portalCluster), talking to the store over etcd's gRPC on a unix
// socket. Each portal runs in a cgroup of its own, with a CFS quota of
// VDA_PORTAL_CPU cores (cpu=<quota>) or none (cpu=none). The store (the
// embedded etcd) and the gRPC clients, over loopback TCP, stay in the
// benchmark's process without a quota; the clients alternate between the
// portals. The cluster and the create request are BenchmarkCreatePortal's.
// Two portals run with 16 clients (8 each) and with 32 (16 each, as many
// as the one portal has): a portal's CPU per create falls with the
// creates it has in flight (they share commits, revision reads, gRPC
// writes and wake-ups), so the first compares the same load, the second
// the same load per portal.
//
// Besides DAs/s and latencies it reports the store transactions and
// conflicts per create (counted in the portals), and, over the timed
// creates, the CPU in cores each portal used (cores-p<k>, from its
// cgroup), the share of its CFS periods in which it hit its quota
// (throttled-p<k>), the portals' CPU per create, and the CPU of the
// benchmark's process (cores-store+clients).
// A portal held at its quota (throttled in most periods) is the
// bottleneck. It needs the cgroup v1 cpu and cpuacct
// controllers and root, and skips without them.
func BenchmarkCreatePortalProcs(b *testing.B) {
	if err := cgroupsUsable(); err != nil {
		b.Skipf("needs a CPU quota per portal process: %v", err)
	}
	quota := defaultPortalCPU
	if v := os.Getenv(portalCPUEnv); v != "" {
		q, err := strconv.ParseFloat(v, 64)
		require.NoError(b, err, "%s", portalCPUEnv)
		require.Greater(b, q, 0.0, "%s", portalCPUEnv)
		quota = q
	}
	for _, cores := range []float64{quota, 0} {
		name := "none"
		if cores > 0 {
			name = strconv.FormatFloat(cores, 'f', -1, 64)
		}
		for _, run := range []struct{ portals, clients int }{{1, 16}, {2, 16}, {2, 32}} {
			b.Run(fmt.Sprintf("cpu=%s/portals=%d/clients=%d", name, run.portals, run.clients), func(b *testing.B) {
				benchPortalProcs(b, run.portals, run.clients, cores)
			})
		}
	}
}

func benchPortalProcs(b *testing.B, portals, clients int, cores float64) {
	s, uri := openEmbeddedShared(b)
	loadCluster(b, s, 100, 400, 20)
	ctx := context.Background()
	ps := make([]*portalProc, portals)
	groups := make([]*cpuGroup, portals)
	for k := range ps {
		groups[k] = newPortalGroup(b, cores)
		ps[k] = startPortalProc(b, uri, k, groups[k])
		_, err := ps[k].client.CreateDa(ctx, createDaRequest(fmt.Sprintf("warmup%d", k)))
		require.NoError(b, err)
	}
	for _, p := range ps {
		p.ask(b, "reset")
	}
	before := make([]cpuSample, portals)
	for k, g := range groups {
		var err error
		before[k], err = g.sample()
		require.NoError(b, err)
	}
	self := processCPU(b)
	start := time.Now()
	runClients(b, clients, func(i int64) error {
		_, err := ps[int(i)%portals].client.CreateDa(ctx, createDaRequest(fmt.Sprintf("da%07d", i)))
		return err
	})
	elapsed := time.Since(start).Seconds()
	b.ReportMetric((processCPU(b)-self).Seconds()/elapsed, "cores-store+clients")
	var txns, failed int64
	var used time.Duration
	for k, p := range ps {
		after, err := groups[k].sample()
		require.NoError(b, err)
		used += after.used - before[k].used
		b.ReportMetric((after.used-before[k].used).Seconds()/elapsed, fmt.Sprintf("cores-p%d", k))
		if n := after.periods - before[k].periods; n > 0 {
			b.ReportMetric(float64(after.throttled-before[k].throttled)/float64(n), fmt.Sprintf("throttled-p%d", k))
		}
		var t, f int64
		_, err = fmt.Sscan(p.ask(b, "stats"), &t, &f)
		require.NoError(b, err)
		txns += t
		failed += f
	}
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "portal-cpu-µs/create")
	b.ReportMetric(float64(txns)/float64(b.N), "txns/create")
	b.ReportMetric(float64(failed)/float64(b.N), "conflicts/create")
}

// TestPortalProcess holds BenchmarkCreatePortalProcs's portal process to
// what the benchmark takes from it: it serves creates over the store it
// shares with this process, as the portal of its index (registered as
// placer portal<k>), and counts its store transactions from a reset.
func TestPortalProcess(t *testing.T) {
	s, uri := openEmbeddedShared(t)
	ctx := context.Background()
	c := newCluster(t, s)
	buildCluster(t, c, 6, 2, 4)
	p := startPortalProc(t, uri, 1, nil)
	require.Equal(t, "ok", p.ask(t, "reset"))
	_, err := p.client.CreateDa(ctx, createDaRequest("da0"))
	require.NoError(t, err)
	_, err = c.GetDiskArray(ctx, "da0")
	require.NoError(t, err)
	var txns, failed int64
	_, err = fmt.Sscan(p.ask(t, "stats"), &txns, &failed)
	require.NoError(t, err)
	require.Positive(t, txns)
	require.Zero(t, failed)
	require.Eventually(t, func() bool {
		_, err := s.Get(ctx, vda.KeyPlacer("portal1"))
		return err == nil
	}, time.Minute, 10*time.Millisecond, "the portal process never registered its placement affinity")
}

// openEmbeddedShared is openEmbedded, and the etcd:// URI through which
// other processes reach the same store (the server's unix socket).
func openEmbeddedShared(tb testing.TB) (store.Store, string) {
	dir := tb.TempDir()
	s, err := store.Open(context.Background(), (&url.URL{Scheme: "embedded", Path: dir}).String())
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s, "etcd:///?endpoint=" + url.QueryEscape("unix://"+filepath.Join(dir, "etcd.sock"))
}

// processCPU is the CPU (user and system) this process used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// portalProc is a portal served by a process of its own (runPortalProc),
// in a cgroup of its own. Lines on its standard input ask it something;
// it answers each with a line on its standard output.
type portalProc struct {
	client pb.PortalClient
	in     *os.File
	out    *bufio.Reader
}

// portalGroups numbers the cgroups of this process's portal processes.
var portalGroups atomic.Int64

// newPortalGroup makes a cgroup for a portal process, held to cores CPUs
// (0: no quota), and removes it when b ends (after the process is gone,
// whose cleanup runs first).
func newPortalGroup(b *testing.B, cores float64) *cpuGroup {
	g, err := newCPUGroup(fmt.Sprintf("vda-bench-%d-%d", os.Getpid(), portalGroups.Add(1)), cores)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, g.remove()) })
	return g
}

// startPortalProc starts the k-th portal over the store at uri, in the
// cgroup g (nil: none), and connects a client to it. The process and the
// connection go when tb ends.
func startPortalProc(tb testing.TB, uri string, k int, g *cpuGroup) *portalProc {
	exe, err := os.Executable()
	require.NoError(tb, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), portalProcEnv+"="+uri, portalProcIndexEnv+"="+strconv.Itoa(k))
	cmd.Stderr = os.Stderr
	// Should the benchmark die without its cleanups, the portal dies too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	inR, inW, err := os.Pipe()
	require.NoError(tb, err)
	outR, outW, err := os.Pipe()
	require.NoError(tb, err)
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	_, _ = inR.Close(), outW.Close()
	require.NoError(tb, err)
	p := &portalProc{in: inW, out: bufio.NewReader(outR)}
	tb.Cleanup(func() {
		_ = p.in.Close() // the portal stops when its input ends
		require.NoError(tb, cmd.Wait())
		_ = outR.Close()
	})
	if g != nil {
		if err := g.add(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			tb.Fatal(err)
		}
	}
	addr, ok := strings.CutPrefix(p.read(tb), "addr ")
	require.True(tb, ok, "portal %d did not say its address", k)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = conn.Close() }) // before the portal stops: no RPC left to wait for
	p.client = pb.NewPortalClient(conn)
	return p
}

// ask sends the portal a request line and returns its answer.
func (p *portalProc) ask(tb testing.TB, req string) string {
	_, err := fmt.Fprintln(p.in, req)
	require.NoError(tb, err)
	return p.read(tb)
}

func (p *portalProc) read(tb testing.TB) string {
	line, err := p.out.ReadString('\n')
	require.NoError(tb, err, "portal process: %q", line)
	return strings.TrimSuffix(line, "\n")
}

// runPortalProc is a portal process of BenchmarkCreatePortalProcs (see
// TestMain): the portal of index k (its Cluster made by newPortalCluster)
// over the store at uri, counting the store transactions it makes, on
// 127.0.0.1 at a port of the kernel's choice, which it writes as
// "addr <host:port>". Then it answers lines on its input: "reset" zeroes
// the counts ("ok"), "stats" writes them ("<txns> <conflicts>"). It stops
// when its input ends.
func runPortalProc(uri, index string) error {
	k, err := strconv.Atoi(index)
	if err != nil {
		return fmt.Errorf("%s: %w", portalProcIndexEnv, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	raw, err := store.Open(ctx, uri)
	if err != nil {
		return err
	}
	defer func() { _ = raw.Close() }()
	cs := &txnCountingStore{Store: raw}
	c, err := newPortalCluster(cs, k)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	srv, err := portal.New(portal.Config{Cluster: c, Insecure: true})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	fmt.Printf("addr %s\n", lis.Addr())
	prof := cpuProfile{path: os.Getenv(portalProfileEnv)}
	defer func() { _ = prof.stop() }()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "reset":
			cs.txns.Store(0)
			cs.failed.Store(0)
			if err := prof.start(k); err != nil {
				return err
			}
			fmt.Println("ok")
		case "stats":
			if err := prof.stop(); err != nil {
				return err
			}
			fmt.Printf("%d %d\n", cs.txns.Load(), cs.failed.Load())
		default:
			fmt.Println("unknown request")
		}
	}
	cancel()
	return <-done
}

// cpuProfile writes a portal process's CPU profile to <path>.p<k>, if
// path is set, from start to stop.
type cpuProfile struct {
	path string
	f    *os.File
}

func (p *cpuProfile) start(k int) error {
	if p.path == "" || p.f != nil {
		return nil
	}
	f, err := os.Create(fmt.Sprintf("%s.p%d", p.path, k))
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return errors.Join(err, f.Close())
	}
	p.f = f
	return nil
}

func (p *cpuProfile) stop() error {
	if p.f == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := p.f.Close()
	p.f = nil
	return err
}
