package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/agent/agenttest"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/internal/testproc"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
	"github.com/vda-io/vda/store"
)

// spreadNode is a node of BenchmarkFailoverSpread's cluster: its agent is
// in this process, serving gRPC on a loopback port (its name); its SPDK
// is a fake in this process (inprocNode) or a vda-fakespdk process of
// its own (procNode).
type spreadNode interface {
	failoverNode
	// name is the node's name, its agent's gRPC address.
	name() string
	// listenerID is where the node's NVMe-oF subsystems listen.
	listenerID() nvmeof.TransportID
	// health is the agent's Health, in the process.
	health(ctx context.Context) (*agentpb.HealthReply, error)
	// pid is the process of the node's SPDK (0: this process).
	pid() int
}

// inprocNode is a realNode: its fake SPDK is in this process.
type inprocNode struct{ *realNode }

func (n inprocNode) name() string                   { return n.Addr }
func (n inprocNode) listenerID() nvmeof.TransportID { return n.Listener }
func (n inprocNode) pid() int                       { return 0 }

func (n inprocNode) health(ctx context.Context) (*agentpb.HealthReply, error) {
	c := n.Client("bench")
	if c == nil {
		return nil, errors.New("agent down")
	}
	return c.Health(ctx, &agentpb.HealthRequest{})
}

// procNode is a node whose fake SPDK is a vda-fakespdk process, started
// as the tutorial starts spdk_tgt (--wait-for-rpc, bdev_set_options -d,
// framework_start_init), with its NVMe-oF listener port held by that
// process (--reserve): every fabric connection to and from the node's
// SPDK is that process's, none is this one's. The agent is in this
// process, as agenttest.Node's is.
type procNode struct {
	t    testing.TB
	role agent.Role
	bin  string // vda-fakespdk
	dir  string // the SPDK socket, the agent's state, logs
	grpc *reserve.Port
	lis  nvmeof.TransportID
	log  hclog.Logger
	// maxSubsystems, if not 0, is set at start-up (nvmf_set_max_subsystems):
	// SPDK holds 1,024 NVMe-oF subsystems by default, the discovery
	// subsystem included.
	maxSubsystems uint32

	mu      sync.Mutex
	proc    *testproc.Proc
	spdk    *spdk.Client // the benchmark's own, for anaOptimized
	agent   *agent.Agent
	cancel  context.CancelFunc
	stopped chan struct{}
}

// startProcNode starts a node of role whose SPDK is the vda-fakespdk at
// bin, set up for maxSubsystems NVMe-oF subsystems (0: SPDK's default).
// Everything it starts is stopped when t ends.
func startProcNode(t testing.TB, bin string, role agent.Role, maxSubsystems uint32) *procNode {
	t.Helper()
	dir, err := os.MkdirTemp("", "spread") // unix socket paths are short
	require.NoError(t, err)
	n := &procNode{t: t, role: role, bin: bin, dir: dir, grpc: reserve.ForTest(t, "127.0.0.1"), log: hclog.NewNullLogger(),
		maxSubsystems: maxSubsystems}
	if lvl := os.Getenv("VDA_TEST_LOG"); lvl != "" {
		n.log = hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(lvl), Output: os.Stderr, Name: n.name()})
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "state"), 0o700))
	t.Cleanup(func() {
		n.stopAgent()
		n.stopSPDK()
		_ = os.RemoveAll(dir)
	})
	n.startSPDK("127.0.0.1")
	n.startAgent()
	return n
}

func (n *procNode) name() string                   { return n.grpc.String() }
func (n *procNode) listenerID() nvmeof.TransportID { return n.lis }

func (n *procNode) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return 0
	}
	return n.proc.PID()
}

// startSPDK starts the fake SPDK process with its listener port reserved
// at reserveAddr (127.0.0.1: any free port; a restart asks for the port
// it had), and sets it up as the tutorial does.
func (n *procNode) startSPDK(reserveAddr string) {
	sock, addrFile := filepath.Join(n.dir, "spdk.sock"), filepath.Join(n.dir, "listener")
	_ = os.Remove(sock)
	_ = os.Remove(addrFile)
	p := testproc.StartT(n.t, testproc.Spec{Name: n.name() + "-spdk", LogPath: filepath.Join(n.dir, "spdk.log"),
		Cmd: exec.Command(n.bin, "-r", sock, "--wait-for-rpc", "--log-level", "error",
			"--reserve", reserveAddr, "--reserved-file", addrFile)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var c *spdk.Client
	eventually(n.t, func() bool {
		if p.Exited() {
			n.t.Fatalf("%s exited: %v: %s", p.Name(), p.Err(), p.Tail(2000))
		}
		var err error
		c, err = spdk.Dial(ctx, sock)
		return err == nil
	}, 5*time.Minute, 20*time.Millisecond, "the SPDK socket of %s", n.name())
	if n.maxSubsystems != 0 {
		require.NoError(n.t, c.NvmfSetMaxSubsystems(ctx, spdk.NvmfSetMaxSubsystemsParams{MaxSubsystems: n.maxSubsystems}))
	}
	require.NoError(n.t, agenttest.InitSPDK(ctx, sock))
	addr, err := os.ReadFile(addrFile) // written before the socket is served
	require.NoError(n.t, err)
	host, port, err := net.SplitHostPort(strings.TrimSpace(string(addr)))
	require.NoError(n.t, err)
	lis, err := nvmeof.NewTransportID("tcp", "ipv4", host, port)
	require.NoError(n.t, err)
	if n.lis.TrSvcID != "" {
		require.Equal(n.t, n.lis, lis, "restarted on its listener's address")
	}
	n.mu.Lock()
	n.proc, n.spdk, n.lis = p, c, lis
	n.mu.Unlock()
}

// stopSPDK kills the SPDK process (kill -9): its exports and sessions
// close, its state is lost, and its listener port is free until it starts
// again.
func (n *procNode) stopSPDK() {
	n.mu.Lock()
	p, c := n.proc, n.spdk
	n.proc, n.spdk = nil, nil
	n.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	if p != nil {
		_ = p.Kill()
	}
}

// startAgent starts the node's agent on its SPDK, serving gRPC on the
// node's port.
func (n *procNode) startAgent() {
	cfg := agent.DefaultConfig(n.role)
	cfg.SPDKAddr, cfg.Listener, cfg.StateDir = filepath.Join(n.dir, "spdk.sock"), n.lis, filepath.Join(n.dir, "state")
	cfg.Insecure, cfg.Logger = true, n.log.Named("agent")
	a, err := agent.New(cfg)
	require.NoError(n.t, err)
	lis, err := n.grpc.Listen()
	if err != nil {
		_ = a.Close()
		require.NoError(n.t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := a.Serve(ctx, lis); err != nil {
			n.log.Error("agent stopped", "error", err)
		}
		_ = a.Close()
	}()
	n.mu.Lock()
	n.agent, n.cancel, n.stopped = a, cancel, stopped
	n.mu.Unlock()
}

func (n *procNode) stopAgent() {
	n.mu.Lock()
	cancel, stopped := n.cancel, n.stopped
	n.agent, n.cancel, n.stopped = nil, nil, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-stopped
	}
}

// kill crashes the node: its agent stops and its SPDK process is killed.
func (n *procNode) kill() {
	n.stopAgent()
	n.stopSPDK()
}

// restart brings a killed node back: a fresh SPDK process on the same
// socket and listener address, then an agent with the same state dir.
func (n *procNode) restart() {
	if n.pid() == 0 {
		n.startSPDK(net.JoinHostPort(n.lis.TrAddr, n.lis.TrSvcID))
	}
	n.mu.Lock()
	up := n.agent != nil
	n.mu.Unlock()
	if !up {
		n.startAgent()
	}
}

func (n *procNode) anaOptimized(nqn string) bool {
	n.mu.Lock()
	c := n.spdk
	n.mu.Unlock()
	if c == nil {
		return false
	}
	ls, err := c.NvmfSubsystemGetListeners(context.Background(), spdk.NQNParams{NQN: nqn})
	return err == nil && len(ls) == 1 && ls[0].State(1) == spdk.ANAOptimized
}

// promotedAt is when the poll saw the export optimized: the node's fake is
// a process of its own.
func (n *procNode) promotedAt(nqn string) (time.Time, bool) {
	ok := n.anaOptimized(nqn)
	return time.Now(), ok
}

func (n *procNode) health(ctx context.Context) (*agentpb.HealthReply, error) {
	n.mu.Lock()
	a := n.agent
	n.mu.Unlock()
	if a == nil {
		return nil, errors.New("agent down")
	}
	return a.Local(mtls.Identity{Role: mtls.RoleMonitor, Name: "bench"}).Health(ctx, &agentpb.HealthRequest{})
}

// spreadCluster is BenchmarkFailoverSpread's cluster: dns DNs of one
// malloc PD each and cns CNs, registered in s.
type spreadCluster struct {
	t   testing.TB
	c   *vda.Cluster
	dns []spreadNode
	cns []spreadNode
}

// newSpreadCluster starts the cluster, its nodes' SPDKs in this process
// (bin "") or each a process of the vda-fakespdk at bin set up for
// maxSubsystems NVMe-oF subsystems (0: SPDK's default, 1,024).
func newSpreadCluster(t testing.TB, s store.Store, dns, cns int, pdBytes uint64, bin string, maxSubsystems uint32) *spreadCluster {
	t.Helper()
	rc := &spreadCluster{t: t}
	if bin == "" {
		real := newRealClusterSized(t, s, dns, cns, pdBytes)
		rc.c = real.c
		for _, n := range real.dns {
			rc.dns = append(rc.dns, inprocNode{n})
		}
		for _, n := range real.cns {
			rc.cns = append(rc.cns, inprocNode{n})
		}
		return rc
	}
	ctx := context.Background()
	c, err := vda.New(vda.DefaultConfig(s))
	require.NoError(t, err)
	rc.c = c
	for i := 0; i < dns; i++ {
		n := startProcNode(t, bin, agent.RoleDN, maxSubsystems)
		_, err := c.CreateDiskNode(ctx, vda.NodeSpec{Name: n.name(), Listener: n.lis, Location: fmt.Sprint("dn", i)})
		require.NoError(t, err)
		_, err = c.CreatePhysicalDisk(ctx, vda.PhysicalDiskSpec{DNName: n.name(), Name: "pd0",
			Conf: vda.PDConf{Type: vda.PDMalloc, SizeBytes: pdBytes}})
		require.NoError(t, err)
		rc.dns = append(rc.dns, n)
	}
	for i := 0; i < cns; i++ {
		n := startProcNode(t, bin, agent.RoleCN, maxSubsystems)
		_, err := c.CreateControllerNode(ctx, vda.NodeSpec{Name: n.name(), Listener: n.lis, Location: fmt.Sprint("cn", i)})
		require.NoError(t, err)
		rc.cns = append(rc.cns, n)
	}
	return rc
}

func (rc *spreadCluster) nodes() []spreadNode {
	return append(append([]spreadNode(nil), rc.dns...), rc.cns...)
}

func (rc *spreadCluster) node(name string) spreadNode {
	for _, n := range rc.nodes() {
		if n.name() == name {
			return n
		}
	}
	rc.t.Fatalf("no node %s", name)
	return nil
}

func (rc *spreadCluster) da(name string) vda.DiskArray {
	da, err := rc.c.GetDiskArray(context.Background(), name)
	require.NoError(rc.t, err)
	return da
}

// openFiles is how many files this process and, with SPDK processes, the
// one of them with the most have open: the limit (ulimit -n, 20,000 here)
// is per process.
func (rc *spreadCluster) openFiles() string {
	most, maxOf := 0, ""
	for _, n := range rc.nodes() {
		pid := n.pid()
		if pid == 0 {
			continue
		}
		fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
		if err == nil && len(fds) > most {
			most, maxOf = len(fds), n.name()
		}
	}
	if maxOf == "" {
		return openFDs()
	}
	return fmt.Sprintf("%s here, at most %d in an SPDK process (%s)", openFDs(), most, maxOf)
}

// spreadCPU is the CPU time this process and each SPDK process have used.
type spreadCPU struct {
	here time.Duration
	pids map[int]time.Duration
}

// cpu is the CPU time used so far by this process and by the nodes' SPDK
// processes.
func (rc *spreadCluster) cpu() spreadCPU {
	c := spreadCPU{here: procCPU("self"), pids: map[int]time.Duration{}}
	for _, n := range rc.nodes() {
		if pid := n.pid(); pid != 0 {
			c.pids[pid] = procCPU(strconv.Itoa(pid))
		}
	}
	return c
}

// cpuSince says how much CPU this process, the DNs' and the CNs' SPDK
// processes have used since c (a process gone since, such as a killed
// node's, is left out).
func (rc *spreadCluster) cpuSince(c spreadCPU) string {
	sum := func(ns []spreadNode) (d time.Duration) {
		for _, n := range ns {
			if was, ok := c.pids[n.pid()]; ok {
				d += procCPU(strconv.Itoa(n.pid())) - was
			}
		}
		return d
	}
	out := fmt.Sprintf("%v here", (procCPU("self") - c.here).Round(10*time.Millisecond))
	if len(c.pids) > 0 {
		out += fmt.Sprintf(", %v in the DNs' SPDKs, %v in the CNs'", sum(rc.dns).Round(10*time.Millisecond),
			sum(rc.cns).Round(10*time.Millisecond))
	}
	return out
}

// procCPU is the user and system CPU time of /proc/<pid> (0 if unknown).
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')') // the command may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b)[i+1:]) // f[0] is field 3 (state): utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / 100 // USER_HZ, 100 on Linux
}

// buildFakeSPDK builds cmd/vda-fakespdk into dir and returns its path;
// VDA_BENCH_FAKESPDK names one built already instead.
func buildFakeSPDK(t testing.TB, dir string) string {
	t.Helper()
	if bin := os.Getenv("VDA_BENCH_FAKESPDK"); bin != "" {
		return bin
	}
	bin := filepath.Join(dir, "vda-fakespdk")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/vda-io/vda/cmd/vda-fakespdk").CombinedOutput()
	require.NoError(t, err, "go build vda-fakespdk: %s", out)
	return bin
}

// A procNode is a node as the benchmark needs it: its SPDK a process that
// holds the node's NVMe-oF listener port, its agent in this process; a
// DA on two of them is exported by its primary, and after the primary's
// kill and restart the node serves on the same addresses again.
func TestSpreadProcNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vda-fakespdk: not with -short")
	}
	s := newMemStore(t)
	bin := buildFakeSPDK(t, t.TempDir())
	rc := newSpreadCluster(t, s, 2, 2, 1<<30, bin, 2048)
	for _, n := range rc.nodes() {
		require.NotZero(t, n.pid(), "its own process")
		require.NotEqual(t, os.Getpid(), n.pid())
	}
	startMonitor(t, testConfig(s, "m1"))
	ctx := context.Background()
	require.NoError(t, createSpreadDAs(ctx, rc.c, 0, 1))
	var da vda.DiskArray
	eventually(t, func() bool {
		da = rc.da("da00000")
		return da.Initialized && da.Status.Health == vda.HealthHealthy
	}, 2*time.Minute, 20*time.Millisecond)
	p, _ := da.Primary()
	primary := rc.node(p.CNName)
	nqn := expNQN(t, da.Name)
	eventually(t, func() bool { return primary.anaOptimized(nqn) }, 2*time.Minute, 20*time.Millisecond)
	lis := primary.listenerID()
	// The agent allows the exporter's host after it sets the listener
	// optimized: the export serves once the host is in.
	var err error
	eventually(t, func() bool {
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		conn, derr := fabric.Dial(dctx, fabric.TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: lis.TrAddr, TrSvcID: lis.TrSvcID},
			nqn, initiator)
		if err = derr; err == nil {
			_ = conn.Close()
		}
		return err == nil
	}, 2*time.Minute, 20*time.Millisecond)
	require.NoError(t, err, "the export serves on the port the SPDK process holds")

	pid := primary.pid()
	primary.kill()
	require.Zero(t, primary.pid())
	require.False(t, primary.anaOptimized(nqn))
	_, err = primary.health(ctx)
	require.Error(t, err, "down")
	primary.restart()
	require.NotEqual(t, pid, primary.pid(), "a new process")
	require.Equal(t, lis, primary.listenerID(), "on the same listener address")
	eventually(t, func() bool {
		h, err := primary.health(ctx)
		return err == nil && h.GetRole() == "cn"
	}, 2*time.Minute, 20*time.Millisecond)
}
