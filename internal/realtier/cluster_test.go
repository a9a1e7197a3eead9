package realtier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/vda-io/vda/api/portalpb"
	"github.com/vda-io/vda/internal/multihost"
	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/internal/spdkproc"
	"github.com/vda-io/vda/internal/testproc"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// The arrays every test makes: the tutorial's da0 shape, exported to host0.
const (
	hostNQN      = "nqn.2016-06.io.spdk:host0"
	daSize       = 32 << 20
	daConf       = `{"stripe_count":2, "stripe_size_kb":64}`
	aioFileBytes = 256 << 20
	// stopFor is how long the false-failure tests stop a process: well
	// beyond the monitor's detection of a silent node (its SlowTimeout,
	// 5 s by default, plus a probe interval), so that each stop is exactly
	// one failover on a loaded machine too.
	stopFor = 10 * time.Second
)

// Controller listeners (where the host connects).
var cnPaths = map[string]string{"cn0": "192.168.0.16:4430", "cn1": "192.168.0.17:4430"}

// requireTier skips (or, with VDA_REQUIRE_SPDK=1, fails) when anything the
// tier needs is missing.
func requireTier(t *testing.T) {
	t.Helper()
	spdkproc.Require(t)
	for _, err := range []error{netnstest.Available(), multihost.PostgresAvailable()} {
		if err == nil {
			continue
		}
		if spdkproc.Required() {
			t.Fatalf("%v (and %s=1)", err, spdkproc.EnvRequire)
		}
		t.Skip(err)
	}
}

// node is a disk or controller node: an spdk_tgt and its agent.
type node struct {
	name, role, mask string
	gen              int // incarnation, for log names
	tgt              *spdkproc.Target
	agent            *testproc.Proc
}

// cluster is seed 003 on real SPDK. Its processes live as long as the
// top-level test; subtests share it, each with arrays of its own.
type cluster struct {
	*multihost.Env
	portal pb.PortalClient
	nodes  map[string]*node
	// baseline is what the nodes' SPDK had when the running subtest began.
	baseline map[string]bool
	dirty    bool // a subtest failed: restart every node before the next

	mu       sync.Mutex
	targets  []*spdkproc.Target // every incarnation, for crash checks
	reported map[any]bool       // crashes already reported
}

var nodeOrder = []string{"dn0", "dn1", "cn0", "cn1"}

// newCluster starts the control plane and the four nodes, registers the
// nodes with the tutorial's commands as written, and gives each disk node
// one aio PD on a file under the test's temporary directory (so a
// restarted disk node finds its data).
func newCluster(t *testing.T) *cluster {
	t.Helper()
	requireTier(t)
	c := &cluster{Env: multihost.New(t), nodes: map[string]*node{}, reported: map[any]bool{}}
	t.Cleanup(func() { c.DumpLogs(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c.StartControlPlane(t, ctx)
	// Two cores: each node busy-polls one of them.
	for _, n := range []*node{{name: "dn0", role: "dn", mask: "0x1"}, {name: "dn1", role: "dn", mask: "0x2"},
		{name: "cn0", role: "cn", mask: "0x1"}, {name: "cn1", role: "cn", mask: "0x2"}} {
		c.nodes[n.name] = n
	}
	require.NoError(t, c.startTargets(ctx, nodeOrder...))
	for _, name := range nodeOrder {
		c.startAgent(t, c.nodes[name])
	}
	admin, err := mtls.Discover(c.TLSDir("cli"), mtls.RoleAdmin)
	require.NoError(t, err)
	tc, err := admin.ClientTLS()
	require.NoError(t, err)
	conn, err := grpc.NewClient("passthrough:///"+tutorial.Portal,
		grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return c.Host("cli").DialContext(ctx, "tcp", addr)
		}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c.portal = pb.NewPortalClient(conn)

	c.Tutorial(t, ctx, func(line string) bool {
		return strings.Contains(line, " dn create ") || strings.Contains(line, " cn create ")
	})
	for _, dn := range []string{"dn0", "dn1"} {
		f := filepath.Join(c.AioDir, dn+".img")
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		require.NoError(t, os.Truncate(f, aioFileBytes))
		_, err := c.portal.CreatePd(ctx, &pb.CreatePdRequest{DnName: c.Host(dn).IP + ":9720", PdName: "pd0",
			PdConf: fmt.Sprintf(`{"type":"aio","filename":%q}`, f)})
		require.NoError(t, err)
	}
	c.waitNodesHealthy(t, ctx)
	// Arrays are placed on PDs the monitor has reported.
	multihost.WaitFor(t, 3*time.Minute, 200*time.Millisecond, "PDs never healthy", func() error {
		for _, dn := range []string{"dn0", "dn1"} {
			r, err := c.portal.GetPd(ctx, &pb.GetPdRequest{DnName: c.Host(dn).IP + ":9720", PdName: "pd0"})
			if err != nil {
				return err
			}
			if st := r.GetPdMsg().GetStatus(); st.GetHealth() != "healthy" {
				return fmt.Errorf("%s pd0: %v", dn, st)
			}
		}
		return nil
	})
	return c
}

// startTargets starts the named nodes' spdk_tgt processes at once.
func (c *cluster) startTargets(ctx context.Context, names ...string) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		n := c.nodes[name]
		n.gen++
		wg.Go(func() {
			tg, err := spdkproc.Start(ctx, spdkproc.Config{
				Name:    fmt.Sprintf("%s-spdk#%d", n.name, n.gen),
				Socket:  filepath.Join(c.State, n.name+".sock"),
				LogPath: filepath.Join(c.Logs, fmt.Sprintf("%s-spdk.%d.log", n.name, n.gen)),
				CPUMask: n.mask,
				Command: c.Host(n.name).Command,
			})
			if err != nil {
				errs[i] = err
				return
			}
			c.mu.Lock()
			c.targets = append(c.targets, tg)
			c.mu.Unlock()
			c.Track(tg.Proc)
			n.tgt = tg
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) startAgent(t testing.TB, n *node) {
	t.Helper()
	n.agent = c.StartAgent(t, n.name, n.role, n.tgt.Socket())
}

// kill kills a node's agent and spdk_tgt at once (kill -9).
func (c *cluster) kill(name string) {
	n := c.nodes[name]
	var wg sync.WaitGroup
	for _, p := range []*testproc.Proc{n.agent, n.tgt.Proc} {
		wg.Go(func() { _ = p.Kill() })
	}
	wg.Wait()
}

// restart kills a node if it runs and starts it again (an empty spdk_tgt;
// a disk node's PD file keeps its data).
func (c *cluster) restart(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	c.kill(name)
	require.NoError(t, c.startTargets(ctx, name))
	c.startAgent(t, c.nodes[name])
}

// ensureNodes restarts every node after a failed subtest and waits until
// the monitor sees every node healthy.
func (c *cluster) ensureNodes(t *testing.T, ctx context.Context) {
	t.Helper()
	if c.dirty {
		// A failed subtest may have left SPDK in any state (crashed,
		// corrupted, holding objects): start from fresh nodes. Disk nodes
		// keep their PD files.
		t.Log("an earlier subtest failed: restarting every node")
		for _, name := range nodeOrder {
			c.kill(name)
		}
		require.NoError(t, c.startTargets(ctx, nodeOrder...))
		for _, name := range nodeOrder {
			c.startAgent(t, c.nodes[name])
		}
		c.dirty = false
	}
	c.waitNodesHealthy(t, ctx)
}

// waitNodesHealthy waits until the monitor reports every node healthy.
func (c *cluster) waitNodesHealthy(t testing.TB, ctx context.Context) {
	t.Helper()
	multihost.WaitFor(t, 3*time.Minute, 200*time.Millisecond, "nodes never healthy", func() error {
		for _, name := range nodeOrder {
			addr := c.Host(name).IP
			var st *pb.Status
			if strings.HasPrefix(name, "dn") {
				r, err := c.portal.GetDn(ctx, &pb.GetDnRequest{DnName: addr + ":9720"})
				if err != nil {
					return err
				}
				st = r.GetDnMsg().GetStatus()
			} else {
				r, err := c.portal.GetCn(ctx, &pb.GetCnRequest{CnName: addr + ":9820"})
				if err != nil {
					return err
				}
				st = r.GetCnMsg().GetStatus()
			}
			if st.GetHealth() != "healthy" {
				return fmt.Errorf("%s: %v", name, st)
			}
		}
		return nil
	})
}

// begin prepares a subtest: a full, healthy cluster; when it ends, its
// arrays are deleted, every node's SPDK must be left without them, no
// process may have crashed, and a failure dumps every log.
func (c *cluster) begin(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	c.ensureNodes(t, ctx)
	var err error
	c.baseline, err = c.objects(ctx)
	require.NoError(t, err)
	if len(c.baseline) > 0 {
		t.Logf("the nodes do not start empty (an earlier test left objects): %v", c.baseline)
	}
	t.Cleanup(func() {
		c.checkCrashes(t)
		c.DumpLogs(t)
		c.dirty = c.dirty || t.Failed()
	})
	return ctx
}

// checkCrashes fails t for every spdk_tgt that crashed (an exit nobody
// asked for, or crash lines in its log) and every other process that
// exited by itself, each reported once.
func (c *cluster) checkCrashes(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	isTarget := map[*testproc.Proc]bool{}
	for _, tg := range c.targets {
		isTarget[tg.Proc] = true
		if c.reported[tg] {
			continue
		}
		if err := tg.Crashed(); err != nil {
			c.reported[tg] = true
			t.Error(err)
		}
	}
	for _, p := range c.Procs() {
		if isTarget[p] || c.reported[p] || !p.Exited() || p.Requested() {
			continue
		}
		c.reported[p] = true
		t.Errorf("%s (pid %d) exited by itself: %v\n%s", p.Name(), p.PID(), p.Err(), p.Tail(3000))
	}
}

// array is a DA with one exporter to host0.
type array struct {
	name, exp string
}

func (a *array) String() string { return a.name }

// nqn is the exporter's subsystem NQN.
func (a *array) nqn() string { return "nqn.2016-06.io.spdk:vda-exp-" + a.name + "-" + a.exp }

// createArray creates DA name (the tutorial's da0 shape) with an exporter
// to host0, waits until it is healthy everywhere, and deletes it when t
// ends, checking that no SPDK object of it is left on any node.
func (c *cluster) createArray(t *testing.T, ctx context.Context, name string) *array {
	t.Helper()
	a := &array{name: name, exp: name + "e"}
	multihost.WaitFor(t, time.Minute, 200*time.Millisecond, "da create "+name, func() error {
		_, err := c.portal.CreateDa(ctx, &pb.CreateDaRequest{DaName: name, CntlrCnt: 2, DaSize: daSize,
			PhysicalSize: daSize, DaConf: daConf})
		return err
	})
	t.Cleanup(func() { c.deleteArrays(t, a) })
	_, err := c.portal.CreateExp(ctx, &pb.CreateExpRequest{DaName: name, ExpName: a.exp, InitiatorNqn: hostNQN})
	require.NoError(t, err)
	c.waitSettled(t, ctx, a, -1)
	return a
}

// deleteArrays deletes the arrays' exporters and DAs, then waits until
// every node's SPDK is back to what it had when the subtest began (for an
// empty cluster: nothing but each disk node's PD bdev). Subtests run one
// at a time.
func (c *cluster) deleteArrays(t *testing.T, arrays ...*array) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, a := range arrays {
		if _, err := c.portal.DeleteExp(ctx, &pb.DeleteExpRequest{DaName: a.name, ExpName: a.exp}); err != nil {
			t.Errorf("exp delete %s: %v", a.exp, err)
		}
		if _, err := c.portal.DeleteDa(ctx, &pb.DeleteDaRequest{DaName: a.name}); err != nil {
			t.Errorf("da delete %s: %v", a.name, err)
		}
	}
	err := multihost.Poll(2*time.Minute, 250*time.Millisecond, func() error {
		left, err := c.leftovers(ctx, c.baseline)
		if err == nil && len(left) > 0 {
			err = fmt.Errorf("%d left: %s", len(left), strings.Join(left, ", "))
		}
		return err
	})
	if err != nil {
		t.Errorf("SPDK objects left after deleting %v: %v", arrays, err)
	}
}

// objects lists the SPDK objects (bdevs but the PDs', NVMe-oF subsystems
// but the discovery one) of every running node, as "node kind name".
func (c *cluster) objects(ctx context.Context) (map[string]bool, error) {
	objs := map[string]bool{}
	for _, name := range nodeOrder {
		n := c.nodes[name]
		if n.tgt.Exited() {
			continue
		}
		cl, err := n.tgt.Dial(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		bdevs, err1 := cl.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{})
		subs, err2 := cl.NvmfGetSubsystems(ctx, spdk.NvmfGetSubsystemsParams{})
		_ = cl.Close()
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, b := range bdevs {
			if n, ok := nvmeof.ParseName(b.Name); ok && n.Kind == nvmeof.KindPDBdev {
				continue // a disk node's PD outlives every array
			}
			objs[name+" bdev "+b.Name] = true
		}
		for _, s := range subs {
			if s.Subtype != "Discovery" {
				objs[name+" subsystem "+s.NQN] = true
			}
		}
	}
	return objs, nil
}

// leftovers returns the objects the nodes have beyond base, sorted.
func (c *cluster) leftovers(ctx context.Context, base map[string]bool) ([]string, error) {
	objs, err := c.objects(ctx)
	if err != nil {
		return nil, err
	}
	var left []string
	for o := range objs {
		if !base[o] {
			left = append(left, o)
		}
	}
	slices.Sort(left)
	return left, nil
}

// daGet reads a DA from the portal.
func (c *cluster) daGet(ctx context.Context, name string) (*pb.DaMsg, error) {
	r, err := c.portal.GetDa(ctx, &pb.GetDaRequest{DaName: name})
	return r.GetDaMsg(), err
}

// settled reports whether da has exactly one primary, controller
// primaryIdx (any if negative), and everything (controllers, VDs, the DA)
// healthy.
func settled(da *pb.DaMsg, primaryIdx int) bool {
	if da == nil || primaryOf(da) < 0 || (primaryIdx >= 0 && primaryOf(da) != primaryIdx) {
		return false
	}
	for _, cn := range da.GetCntlrList() {
		if cn.GetHealth() != "healthy" || cn.GetError() {
			return false
		}
	}
	for _, vd := range da.GetVdList() {
		if vd.GetHealth() != "healthy" || vd.GetError() {
			return false
		}
	}
	return da.GetStatus().GetHealth() == "healthy"
}

// primaryOf returns the index of da's one primary controller (-1 if none
// or several).
func primaryOf(da *pb.DaMsg) int {
	idx := -1
	for _, cn := range da.GetCntlrList() {
		if cn.GetPrimary() {
			if idx >= 0 {
				return -1
			}
			idx = int(cn.GetCntlrIdx())
		}
	}
	return idx
}

// primaryHealthy reports whether da's one primary is healthy.
func primaryHealthy(da *pb.DaMsg) bool {
	p := primaryOf(da)
	for _, cn := range da.GetCntlrList() {
		if int(cn.GetCntlrIdx()) == p {
			return cn.GetHealth() == "healthy" && !cn.GetError()
		}
	}
	return false
}

// cnOf returns the node ("cn0", "cn1") of controller idx of da.
func cnOf(da *pb.DaMsg, idx int) string {
	for _, cn := range da.GetCntlrList() {
		if int(cn.GetCntlrIdx()) != idx {
			continue
		}
		for name := range cnPaths {
			if cn.GetCnName() == ipOf(name)+":9820" {
				return name
			}
		}
	}
	return ""
}

func ipOf(name string) string {
	for _, s := range multihost.Servers {
		if s.Name == name {
			return s.IP
		}
	}
	return ""
}

// waitSettled waits until a is settled with primary primaryIdx (any if
// negative) and its exporter reports no error on any controller, and
// returns the DA.
func (c *cluster) waitSettled(t testing.TB, ctx context.Context, a *array, primaryIdx int) *pb.DaMsg {
	t.Helper()
	var da *pb.DaMsg
	multihost.WaitFor(t, 3*time.Minute, 100*time.Millisecond, fmt.Sprintf("%s never settled (primary %d)", a.name, primaryIdx), func() error {
		d, err := c.daGet(ctx, a.name)
		if err != nil {
			return err
		}
		if da = d; !settled(d, primaryIdx) {
			return fmt.Errorf("last: %v", d)
		}
		e, err := c.portal.GetExp(ctx, &pb.GetExpRequest{DaName: a.name, ExpName: a.exp})
		if err != nil {
			return err
		}
		for _, es := range e.GetExpMsg().GetEsMsgList() {
			if es.GetError() {
				return fmt.Errorf("exporter: %v", e.GetExpMsg())
			}
		}
		if n := len(e.GetExpMsg().GetEsMsgList()); n != 2 {
			return fmt.Errorf("exporter on %d controllers", n)
		}
		return nil
	})
	return da
}
