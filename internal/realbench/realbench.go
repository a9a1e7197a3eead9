package realbench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/internal/rpcmeter"
	"github.com/vda-io/vda/internal/spdkproc"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// NVMe/TCP port of every node's listener, inside the network the Env made.
const nvmePort = "4420"

// Env is a private network (netnstest) where nodes run.
type Env struct {
	t     testing.TB
	net   *netnstest.Network
	dir   string
	ips   map[string]string // host -> IP
	nodes []*Node
}

// New returns an Env with hosts "dn" and "cn", or skips t when real SPDK
// or network namespaces are unavailable (fails with VDA_REQUIRE_SPDK=1).
func New(t testing.TB) *Env {
	t.Helper()
	spdkproc.Require(t)
	if err := netnstest.Available(); err != nil {
		if spdkproc.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	// Unix socket paths are short: not under t.TempDir's long names.
	dir, err := os.MkdirTemp("", "vdarb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	e := &Env{t: t, net: netnstest.New(t), dir: dir, ips: map[string]string{}}
	for i, h := range []string{"dn", "cn"} {
		ip := fmt.Sprintf("10.18.0.%d", i+1)
		e.net.AddHost(h, ip+"/24")
		e.ips[h] = ip
	}
	return e
}

// NodeConfig describes one node.
type NodeConfig struct {
	// Role is agent.RoleDN (on host "dn") or agent.RoleCN (on host "cn").
	Role agent.Role
	// MemMB is spdk_tgt's -s (1024 if zero).
	MemMB int
	// Serial makes the agent's SPDK connection one call at a time.
	Serial bool
	// MaxInFlight is the agent's Config.MaxInFlight (its default if zero).
	MaxInFlight int
	// AdminqPollUS, when not zero, is set as bdev_nvme_set_options'
	// nvme_adminq_poll_period_us before the agent runs (SPDK's default:
	// 10,000).
	AdminqPollUS uint64
}

// Node is an spdk_tgt with an agent driving it through a Meter.
type Node struct {
	Role     agent.Role
	Target   *spdkproc.Target
	Meter    *rpcmeter.Proxy
	Agent    *agent.Agent
	Listener nvmeof.TransportID
	client   *spdk.Client
	nodeID   string
	env      *Env
	gen      int64
	stopped  bool
}

// StartNode starts an empty spdk_tgt for cfg.Role and its agent. Stop (or
// the end of the test) kills it.
func (e *Env) StartNode(cfg NodeConfig) *Node {
	t := e.t
	t.Helper()
	host := map[agent.Role]string{agent.RoleDN: "dn", agent.RoleCN: "cn"}[cfg.Role]
	if host == "" {
		t.Fatalf("realbench: role %q", cfg.Role)
	}
	dir, err := os.MkdirTemp(e.dir, host)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Role: cfg.Role, nodeID: nvmeof.NewID(), env: e}
	n.Target = spdkproc.StartT(t, spdkproc.Config{Name: "spdk_tgt-" + host, Socket: filepath.Join(dir, "spdk.sock"),
		MemMB: cfg.MemMB, Command: e.net.Host(host).Command})
	t.Cleanup(n.Stop)
	e.nodes = append(e.nodes, n)
	if cfg.AdminqPollUS > 0 {
		if err := setAdminqPoll(n.Target.Socket(), cfg.AdminqPollUS); err != nil {
			t.Fatal(err)
		}
	}
	n.Meter, err = rpcmeter.Start(filepath.Join(dir, "meter.sock"), n.Target.Socket(), cfg.Serial)
	if err != nil {
		t.Fatal(err)
	}
	n.Listener, err = nvmeof.NewTransportID("tcp", "ipv4", e.ips[host], nvmePort)
	if err != nil {
		t.Fatal(err)
	}
	n.client, err = spdk.New(n.Meter.Addr(), spdk.WithCallTimeout(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ac := agent.DefaultConfig(cfg.Role)
	ac.SPDK, ac.Listener, ac.Insecure = n.client, n.Listener, true
	ac.SyncTimeout = 30 * time.Minute
	if cfg.MaxInFlight > 0 {
		ac.MaxInFlight = cfg.MaxInFlight
	}
	n.Agent, err = agent.New(ac)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Stop ends the node: agent, client, meter, and the spdk_tgt (killed).
func (n *Node) Stop() {
	if n.stopped {
		return
	}
	n.stopped = true
	_ = n.Agent.Close()
	_ = n.client.Close()
	_ = n.Meter.Close()
	_ = n.Target.Kill()
}

// Tails returns the end of the log of every node still running.
func (e *Env) Tails() string {
	var b strings.Builder
	for _, n := range e.nodes {
		if !n.stopped {
			// The first line of each kind of error, by where SPDK logged it.
			var errs []string
			seen := map[string]bool{}
			total := 0
			for _, line := range strings.Split(n.Target.Tail(64<<20), "\n") {
				_, msg, ok := strings.Cut(line, "] ")
				if !ok || !strings.Contains(msg, "*ERROR*") {
					continue
				}
				total++
				where, _, _ := strings.Cut(msg, " ")
				if !seen[where] && len(errs) < 20 {
					seen[where] = true
					errs = append(errs, line)
				}
			}
			fmt.Fprintf(&b, "\n%s's spdk_tgt logged %d errors, first of each kind:\n%s", n.Role, total, strings.Join(errs, "\n"))
		}
	}
	return b.String()
}

// Crashed reports whether the node's spdk_tgt died or logged a crash.
func (n *Node) Crashed() error { return n.Target.Crashed() }

// SyncDN applies st to a disk node and fails unless every object is OK.
func (n *Node) SyncDN(ctx context.Context, st *agentpb.DnState) error {
	return n.sync(ctx, &agentpb.SyncRequest{State: &agentpb.SyncRequest_Dn{Dn: st}})
}

// SyncCN applies st to a controller node and fails unless every object is
// OK (and every primary's array initialized).
func (n *Node) SyncCN(ctx context.Context, st *agentpb.CnState) error {
	return n.sync(ctx, &agentpb.SyncRequest{State: &agentpb.SyncRequest_Cn{Cn: st}})
}

// CreateArrays applies st, whose arrays are not initialized yet, to a
// controller node: it fails unless every controller is OK and its array
// initialized (exporters wait for the next sync).
func (n *Node) CreateArrays(ctx context.Context, st *agentpb.CnState) error {
	return n.syncWant(ctx, &agentpb.SyncRequest{State: &agentpb.SyncRequest_Cn{Cn: st}}, func(o *agentpb.ObjectStatus) bool {
		return o.GetKind() != agentpb.Kind_KIND_CNTLR || o.GetOk() && o.GetDaInitialized()
	})
}

func (n *Node) sync(ctx context.Context, req *agentpb.SyncRequest) error {
	return n.syncWant(ctx, req, (*agentpb.ObjectStatus).GetOk)
}

func (n *Node) syncWant(ctx context.Context, req *agentpb.SyncRequest, good func(*agentpb.ObjectStatus) bool) error {
	n.gen++
	req.Generation, req.StoreRevision, req.AgentId, req.NodeId = n.gen, n.gen, n.Agent.AgentID(), n.nodeID
	rep, err := n.Agent.Sync(ctx, req)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range rep.GetObjects() {
		if !good(o) {
			errs = append(errs, fmt.Errorf("%s %s: %s", o.GetKind(), o.GetId(), o.GetError()))
		}
	}
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	return errors.Join(errs...)
}

// CheckReadOnly returns an error naming every method of counts that may
// change SPDK (not spdk.IsReadOnly).
func CheckReadOnly(counts map[string]int) error {
	var bad []string
	for m, c := range counts {
		if !spdk.IsReadOnly(m) {
			bad = append(bad, fmt.Sprintf("%s x%d", m, c))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return fmt.Errorf("a no-op resync called %s", strings.Join(bad, ", "))
}

// FormatCounts formats counts as "method=n ..." sorted by method.
func FormatCounts(counts map[string]int) string {
	ms := make([]string, 0, len(counts))
	for m := range counts {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", m, counts[m])
	}
	return b.String()
}

// Listener returns the NVMe/TCP listener of the node on host ("dn", "cn").
func (e *Env) Listener(host string) nvmeof.TransportID {
	tid, err := nvmeof.NewTransportID("tcp", "ipv4", e.ips[host], nvmePort)
	if err != nil {
		e.t.Fatal(err)
	}
	return tid
}

// Dial dials from inside host's network namespace ("dn", "cn"): a test's
// NVMe/TCP initiator (nvmetcp.Options.Dial) reaches the nodes with it.
func (e *Env) Dial(host string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return e.net.Host(host).DialContext
}

// FormatStats formats a Meter's stats, one method a line in the order
// they started: count, mean and max time to answer, and when the first
// request went and the last answer came.
func FormatStats(stats map[string]rpcmeter.Stat) string {
	ms := make([]string, 0, len(stats))
	for m := range stats {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b string) int { return cmp.Compare(stats[a].First, stats[b].First) })
	var b strings.Builder
	for _, m := range ms {
		st := stats[m]
		fmt.Fprintf(&b, "\n  %-32s %5d  mean %8v  max %8v  from %8v to %8v", m, st.Count,
			(st.Total / time.Duration(st.Count)).Round(time.Microsecond), st.Max.Round(time.Microsecond),
			st.First.Round(time.Millisecond), st.Last.Round(time.Millisecond))
	}
	return b.String()
}

// setAdminqPoll sets how often SPDK polls each NVMe controller's admin
// queue, on a target that has none yet.
func setAdminqPoll(sock string, us uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := spdk.New(sock)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	if err := c.BdevNvmeSetOptions(ctx, spdk.BdevNvmeSetOptionsParams{NvmeAdminqPollPeriodUS: &us}); err != nil {
		return fmt.Errorf("realbench: bdev_nvme_set_options nvme_adminq_poll_period_us %d: %w", us, err)
	}
	return nil
}
