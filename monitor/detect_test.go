package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
	"github.com/vda-io/vda/store"
)

// Failure detection against real agents on fake SPDKs: a slow SPDK is not
// a dead one, a hung one is failed over once, a dead one fast, and a node
// that failed does not get arrays back before its hold-down.

func TestMissOf(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want failover.Miss
	}{
		"connection refused": {status.Error(codes.Unavailable, "connection error: connect: connection refused"), failover.Refused},
		"spdk gone": {status.Error(codes.Unavailable, "agent: spdk unavailable: dial unix /x.sock: no such file"),
			failover.Refused},
		"probe deadline": {status.Error(codes.DeadlineExceeded, "context deadline exceeded"), failover.Silent},
		"spdk slow":      {status.Error(codes.DeadlineExceeded, "agent: spdk did not answer in time"), failover.Silent},
		"wrapped deadline": {fmt.Errorf("%w: no health answer for 2s: %w", ErrAgent, context.DeadlineExceeded),
			failover.Silent},
		"wrong role":        {fmt.Errorf("%w: x answers as role %q", ErrAgent, "dn"), failover.Refused},
		"permission denied": {status.Error(codes.PermissionDenied, "agent: caller not allowed"), failover.Refused},
		"internal":          {status.Error(codes.Internal, "panic"), failover.Refused},
	} {
		t.Run(name, func(t *testing.T) { require.Equal(t, tc.want, missOf(tc.err)) })
	}
}

// detectConfig probes every 50 ms; refusals fail a node after 3 within 1 s,
// timeouts after slow without an answer; a probe may take slow/2.
func detectConfig(s store.Store, slow, holdDown time.Duration) Config {
	cfg := testConfig(s, "m0")
	cfg.Failover = failover.Config{Interval: 50 * time.Millisecond, MissThreshold: 3, Window: time.Second,
		SlowTimeout: slow, HoldDown: holdDown}
	cfg.HealthTimeout = 0
	return cfg
}

func realNodeHealth(t testing.TB, s store.Store, n *realNode) vda.Health {
	key := vda.KeyCN(n.Addr)
	if n.Role == agent.RoleDN {
		key = vda.KeyDN(n.Addr)
	}
	kv, err := s.Get(context.Background(), vda.KeyStatus(key))
	if errors.Is(err, store.ErrNotFound) {
		return vda.HealthUnknown
	}
	require.NoError(t, err)
	var st vda.Status
	require.NoError(t, json.Unmarshal(kv.Value, &st))
	return st.Health
}

// A primary whose SPDK answers every probe 400 ms late (8 probe intervals;
// the old 400 ms probe timeout would have failed it) is never failed: no
// node failure, no failover, over more than a dozen slow probes.
func TestRealSlowSPDKIsNotFailed(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 1, 2)
	rc.createDA("da0", 1, 2)
	m, _ := startMonitor(t, detectConfig(s, 3*time.Second, 10*time.Second))
	waitServed(t, rc, "da0")
	p, _ := rc.da("da0").Primary()
	slow := rc.node(p.CNName)
	slow.SPDK.Inject("spdk_get_version", spdktest.Fault{Latency: 400 * time.Millisecond})
	probes := slow.SPDK.RPCCount("spdk_get_version")
	eventually(t, func() bool { return slow.SPDK.RPCCount("spdk_get_version") >= probes+15 }, time.Minute,
		10*time.Millisecond)
	st := m.Stats()
	require.Zero(t, st.NodesFailedRefused+st.NodesFailedSilent, "%+v", st)
	require.Zero(t, st.Failovers)
	require.EqualValues(t, 1, rc.da("da0").Epoch)
	require.Equal(t, vda.HealthHealthy, realNodeHealth(t, s, slow))
}

// A primary whose SPDK hangs for longer than SlowTimeout (and then
// recovers) is failed over exactly once, about SlowTimeout after its last
// answer, on weak evidence; when it answers again nothing moves back.
func TestRealHungSPDKFailsOverOnce(t *testing.T) {
	const slowTimeout = 1500 * time.Millisecond
	s := newMemStore(t)
	rc := newRealCluster(t, s, 1, 2)
	before := rc.createDA("da0", 1, 2)
	cfg := detectConfig(s, slowTimeout, time.Minute)
	m, _ := startMonitor(t, cfg)
	waitServed(t, rc, "da0")
	p, _ := before.Primary()
	hung := rc.node(p.CNName)
	// The last answer the monitor gets is to a probe that reaches SPDK
	// after hungAt (however late probes run on a busy machine), so the
	// node is failed no sooner than SlowTimeout after hungAt. (Two probes:
	// the first has passed the fault check once the second is counted;
	// probes share one connection, answered in order.)
	hungAt := time.Now()
	probes := hung.SPDK.RPCCount("spdk_get_version")
	eventually(t, func() bool { return hung.SPDK.RPCCount("spdk_get_version") > probes+1 }, wait, time.Millisecond)
	// The next probe's request, and every later one on the connection,
	// waits 4 s.
	hung.SPDK.Inject("spdk_get_version", spdktest.Fault{Latency: 4 * time.Second, Times: 1})
	eventually(t, func() bool { return m.Stats().Failovers == 1 }, wait, 5*time.Millisecond)
	st := m.Stats()
	require.Equal(t, 1, st.NodesFailedSilent)
	require.Zero(t, st.NodesFailedRefused)
	require.GreaterOrEqual(t, st.LastFailover.Sub(hungAt), slowTimeout-cfg.Failover.Interval,
		"failed before SlowTimeout without an answer")
	require.EqualValues(t, 2, rc.da("da0").Epoch)

	eventually(t, func() bool { return realNodeHealth(t, s, hung) == vda.HealthHealthy }, wait, 5*time.Millisecond,
		"answers again")
	probes = hung.SPDK.RPCCount("spdk_get_version")
	eventually(t, func() bool { return hung.SPDK.RPCCount("spdk_get_version") >= probes+20 }, wait,
		5*time.Millisecond)
	waitServedIgnoringDead(t, rc, "da0")
	st = m.Stats()
	require.Equal(t, 1, st.Failovers, "%+v", st)
	require.Equal(t, 1, st.NodesFailedSilent)
	require.Zero(t, st.NodesFailedRefused)
	require.EqualValues(t, 2, rc.da("da0").Epoch)
	require.Equal(t, []string{hung.Addr}, st.HeldDown)
}

// Strong evidence fails a node fast, also while a slow probe is outstanding:
// SlowTimeout is a minute here, so only refusals can fail the node within
// the test's limits.
func TestRealDeadNodeIsFailedFast(t *testing.T) {
	for name, kill := range map[string]func(t *testing.T, n *realNode){
		"agent gone": func(_ *testing.T, n *realNode) { n.partition() },
		"spdk gone":  func(_ *testing.T, n *realNode) { n.SPDK.Crash() },
		"hung spdk, then agent gone": func(t *testing.T, n *realNode) {
			hangProbes(t, n)
			n.partition()
		},
		"hung spdk, then spdk gone": func(t *testing.T, n *realNode) {
			hangProbes(t, n)
			n.SPDK.Crash()
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newMemStore(t)
			rc := newRealCluster(t, s, 1, 2)
			before := rc.createDA("da0", 1, 2)
			m, _ := startMonitor(t, detectConfig(s, time.Minute, 10*time.Second))
			waitServed(t, rc, "da0")
			p, _ := before.Primary()
			kill(t, rc.node(p.CNName))
			eventually(t, func() bool { return m.Stats().Failovers == 1 }, wait, 5*time.Millisecond)
			st := m.Stats()
			require.Equal(t, 1, st.NodesFailedRefused, "%+v", st)
			require.Zero(t, st.NodesFailedSilent)
			waitServedIgnoringDead(t, rc, "da0")
			newP, _ := rc.da("da0").Primary()
			require.NotEqual(t, p.CNName, newP.CNName)
			require.Equal(t, 1, m.Stats().Failovers)
		})
	}
}

// hangProbes makes n's SPDK sit on every spdk_get_version and waits until a
// probe hangs there (later ones queue behind it on the agent's connection).
func hangProbes(t *testing.T, n *realNode) {
	n.SPDK.Inject("spdk_get_version", spdktest.Fault{Hang: true})
	hung := n.SPDK.RPCCount("spdk_get_version") + 1
	eventually(t, func() bool { return n.SPDK.RPCCount("spdk_get_version") >= hung }, wait, 5*time.Millisecond,
		"a probe hangs")
}

// The primary's node fails, comes back, and then the new primary fails:
// the array waits for the node that came back until it has been healthy
// for HoldDown (its status says so), then moves back to it.
func TestRealHoldDownDelaysMoveBack(t *testing.T) {
	const holdDown = 5 * time.Second
	s := newMemStore(t)
	rc := newRealCluster(t, s, 1, 2)
	before := rc.createDA("da0", 1, 2)
	m, _ := startMonitor(t, detectConfig(s, 2*time.Second, holdDown))
	waitServed(t, rc, "da0")
	p0, _ := before.Primary()
	first := rc.node(p0.CNName)
	first.kill()
	eventually(t, func() bool { return m.Stats().Failovers == 1 }, wait, 5*time.Millisecond)
	p1, _ := rc.da("da0").Primary()
	second := rc.node(p1.CNName)
	require.NotEqual(t, first, second)
	waitServedIgnoringDead(t, rc, "da0")

	back := time.Now() // before the node can answer again
	first.restart()
	eventually(t, func() bool { return realNodeHealth(t, s, first) == vda.HealthHealthy }, wait, 5*time.Millisecond)
	// The new primary goes silent (weak evidence: it may merely be slow),
	// so the array waits for the node that failed moments ago.
	hangProbes(t, second)
	eventually(t, func() bool {
		msg := rc.da("da0").Status.Part(p1.ID).ErrorMsg
		return msg == fmt.Sprintf("controller node %s failed; waiting for %s to be stable for %v (it failed recently)",
			second.Addr, first.Addr, holdDown)
	}, wait, 5*time.Millisecond)
	eventually(t, func() bool { return m.Stats().Waiting == 1 }, wait, 5*time.Millisecond)
	st := m.Stats()
	require.Equal(t, 1, st.Failovers, "%+v", st)
	require.Contains(t, st.HeldDown, first.Addr)

	// Waiting is updated at the end of the round that moved the array.
	eventually(t, func() bool { st := m.Stats(); return st.Failovers == 2 && st.Waiting == 0 }, wait, 5*time.Millisecond)
	st = m.Stats()
	require.GreaterOrEqual(t, st.LastFailover.Sub(back), holdDown, "moved back before the hold-down")
	require.Zero(t, st.Waiting)
	require.Equal(t, 1, st.NodesFailedRefused)
	require.Equal(t, 1, st.NodesFailedSilent)
	da := rc.da("da0")
	require.Equal(t, p0.ID, da.PrimaryCntlrID)
	require.EqualValues(t, 3, da.Epoch)
	second.kill() // its hung probes stay hung
	waitServedIgnoringDead(t, rc, "da0")
}

// A primary whose node is dead (refused, not merely silent) moves at once,
// also onto a node that came back moments ago and is still held down: the
// array is down for certain, and waiting would only keep it down.
func TestRealDeadPrimaryTakesAHeldDownNode(t *testing.T) {
	const holdDown = time.Minute
	s := newMemStore(t)
	rc := newRealCluster(t, s, 1, 2)
	before := rc.createDA("da0", 1, 2)
	m, _ := startMonitor(t, detectConfig(s, 2*time.Second, holdDown))
	waitServed(t, rc, "da0")
	p0, _ := before.Primary()
	first := rc.node(p0.CNName)
	first.kill()
	eventually(t, func() bool { return m.Stats().Failovers == 1 }, wait, 5*time.Millisecond)
	p1, _ := rc.da("da0").Primary()
	second := rc.node(p1.CNName)
	waitServedIgnoringDead(t, rc, "da0")
	first.restart()
	eventually(t, func() bool { return realNodeHealth(t, s, first) == vda.HealthHealthy }, wait, 5*time.Millisecond)
	second.kill()
	eventually(t, func() bool { return m.Stats().Failovers == 2 }, wait, 5*time.Millisecond)
	st := m.Stats()
	require.Contains(t, st.HeldDown, first.Addr, "still held down, chosen anyway")
	require.Zero(t, st.Waiting)
	require.Equal(t, 2, st.NodesFailedRefused)
	require.Equal(t, p0.ID, rc.da("da0").PrimaryCntlrID)
	waitServedIgnoringDead(t, rc, "da0")
}

// A host that reboots under the monitor's connection to its agent sends
// nothing on it, and answers the next segment it gets with a reset. While a
// probe waits on a hung SPDK, the scout sent on the next tick draws that
// reset, so the node is failed on strong evidence at once, not when the late
// probe gives up (HealthTimeout is 30 s here, beyond the test's limits).
func TestRealRebootUnderAHungProbeIsSeenAtOnce(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 1, 1)
	n := newRealNode(t, agent.RoleCN)
	proxy := newRebootProxy(t, n.Addr)
	// The monitor reaches the node through the proxy: its Address.
	_, err := rc.c.CreateControllerNode(context.Background(), vda.NodeSpec{Name: n.Addr, Address: proxy.addr(),
		Listener: n.Listener, Location: "cn1"})
	require.NoError(t, err)
	rc.cns = append(rc.cns, n)
	rc.createDA("da0", 1, 2)
	for _, c := range rc.da("da0").Cntlrs {
		if c.CNName == n.Addr && !c.Primary {
			_, err := rc.c.SwitchoverDiskArray(context.Background(), "da0", c.Idx)
			require.NoError(t, err)
		}
	}
	m, _ := startMonitor(t, detectConfig(s, time.Minute, 10*time.Second))
	waitServed(t, rc, "da0")
	p, _ := rc.da("da0").Primary()
	require.Equal(t, n.Addr, p.CNName)

	hangProbes(t, n)
	proxy.reboot()
	eventually(t, func() bool { return m.Stats().Failovers == 1 }, wait, 5*time.Millisecond)
	st := m.Stats()
	require.Equal(t, 1, st.NodesFailedRefused, "%+v", st)
	require.Zero(t, st.NodesFailedSilent)
}

// rebootProxy forwards TCP connections to an agent until reboot, which
// makes it behave like the agent's host after a reboot: new connections
// are refused, and an old one is reset by the first data that arrives on
// it (and is silent until then).
type rebootProxy struct {
	lis      net.Listener
	target   string
	mu       sync.Mutex
	rebooted bool
	ups      []net.Conn
}

func newRebootProxy(t *testing.T, target string) *rebootProxy {
	// A reserved port: after the reboot connections are refused, and no
	// other process can take the port.
	lis, err := reserve.ForTest(t, "127.0.0.1").Listen()
	require.NoError(t, err)
	p := &rebootProxy{lis: lis, target: target}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		p.reboot()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			down, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = down.Close()
				continue
			}
			p.mu.Lock()
			p.ups = append(p.ups, up)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); p.pumpDown(down, up) }()
			go func() {
				defer wg.Done()
				_, _ = io.Copy(down, up)
				if !p.isRebooted() {
					_ = down.Close()
				}
			}()
		}
	}()
	return p
}

func (p *rebootProxy) addr() string { return p.lis.Addr().String() }

func (p *rebootProxy) isRebooted() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rebooted
}

// pumpDown forwards what the monitor sends, and resets the connection on
// the first data after a reboot.
func (p *rebootProxy) pumpDown(down, up net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := down.Read(buf)
		if err == nil && p.isRebooted() {
			_ = down.(*net.TCPConn).SetLinger(0) // close with a reset
			err = io.ErrClosedPipe
		}
		if err == nil {
			_, err = up.Write(buf[:n])
		}
		if err != nil {
			_ = down.Close()
			_ = up.Close()
			return
		}
	}
}

func (p *rebootProxy) reboot() {
	p.mu.Lock()
	p.rebooted = true
	ups := p.ups
	p.ups = nil
	p.mu.Unlock()
	_ = p.lis.Close()
	for _, up := range ups {
		_ = up.Close()
	}
}
