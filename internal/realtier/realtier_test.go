package realtier

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/testproc"
)

// TestRealCluster runs seed 003 on real SPDK and puts it through what a
// storage operator expects to survive, under host I/O. The subtests share
// one cluster; each makes an array of its own, deletes it at the end, and
// checks that no process crashed and no SPDK object of it is left.
func TestRealCluster(t *testing.T) {
	c := newCluster(t)
	t.Run("Tutorial", c.testTutorial)
	t.Run("KillPrimary", c.testKillPrimary)
	t.Run("Switchover", c.testSwitchover)
	t.Run("FalseFailures", c.testFalseFailures)
	t.Run("DiskNodeRestart", c.testDiskNodeRestart)
	t.Run("ControllerNodeRestart", c.testControllerNodeRestart)
	t.Run("CPULoad", c.testCPULoad)
}

// tutorialWrites is how many blocks each tutorial write phase writes:
// enough to cover many stripes of both VDs.
const tutorialWrites = 512

// testTutorial runs the tutorial's da and exp commands as written, checks
// exp get shows both controllers' listeners, and has host0 and host1 write
// and read their arrays through each path alone and through multipath.
func (c *cluster) testTutorial(t *testing.T) {
	ctx := c.begin(t)
	c.Tutorial(t, ctx, func(line string) bool {
		return strings.Contains(line, " da create ") || strings.Contains(line, " exp create ")
	})
	arrays := []*array{{name: "da0", exp: "exp0"}, {name: "da1", exp: "exp1"}}
	t.Cleanup(func() { c.deleteArrays(t, arrays...) })
	for _, a := range arrays {
		c.waitSettled(t, ctx, a, 0)
	}
	c.WaitExpGet(t, ctx)

	for _, hc := range []struct{ host, nqn, hnqn string }{
		{"host0", "nqn.2016-06.io.spdk:vda-exp-da0-exp0", "nqn.2016-06.io.spdk:host0"},
		{"host1", "nqn.2016-06.io.spdk:vda-exp-da1-exp1", "nqn.2016-06.io.spdk:host1"},
	} {
		// Written through both, read through each alone and both.
		res := c.connect(t, ctx, hc.host, hc.nqn, hc.hnqn).write(t, ctx, tutorialWrites)
		c.verifyEverywhere(t, ctx, hc.host, hc.nqn, hc.hnqn, res)
		// Written through each path alone, read through the other.
		for i, p := range []string{cnPaths["cn0"], cnPaths["cn1"]} {
			res := c.connect(t, ctx, hc.host, hc.nqn, hc.hnqn, p).write(t, ctx, tutorialWrites)
			other := cnPaths[fmt.Sprintf("cn%d", 1-i)]
			c.connect(t, ctx, hc.host, hc.nqn, hc.hnqn, other).verify(t, ctx, res)
		}
	}
	// host1 may not reach host0's array.
	for _, p := range []string{cnPaths["cn0"], cnPaths["cn1"]} {
		err := c.connectOne(ctx, "host1", "nqn.2016-06.io.spdk:vda-exp-da0-exp0", "nqn.2016-06.io.spdk:host1", p)
		require.Error(t, err, "host1 connected to host0's array through %s", p)
		require.NoError(t, c.connectOne(ctx, "host0", "nqn.2016-06.io.spdk:vda-exp-da0-exp0", "nqn.2016-06.io.spdk:host0", p))
	}
}

// kills is how many times KillPrimary kills a primary (VDA_REALTIER_KILLS,
// default 1).
func kills(t *testing.T) int {
	s := os.Getenv("VDA_REALTIER_KILLS")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("VDA_REALTIER_KILLS=%q is not a positive count", s)
	}
	return n
}

// testKillPrimary kills the primary's node (spdk_tgt and agent, kill -9)
// while host0 writes through multipath: exactly one failover, nothing
// acknowledged is lost, and the killed node, restarted, rejoins as a
// secondary. VDA_REALTIER_KILLS=N repeats it and reports p50/p99.
func (c *cluster) testKillPrimary(t *testing.T) {
	ctx := c.begin(t)
	a := c.createArray(t, ctx, "kill")
	w := c.watch(t, a)
	h := c.connect(t, ctx, "host0", a.nqn(), hostNQN)
	n := kills(t)
	var commits, healthies, gaps []time.Duration
	for i := range n {
		da := c.waitSettled(t, ctx, a, -1)
		old := primaryOf(da)
		victim := cnOf(da, old)
		e0 := da.GetEpoch()
		l := h.startLoad(t, ctx)
		l.waitAcks(t, 200, "before the kill")
		killed := time.Now()
		c.kill(victim)
		commit := w.waitFor(t, killed, "a new epoch", func(o obs) bool { return o.epoch > e0 })
		healthy := w.waitFor(t, killed, "a healthy new primary", func(o obs) bool {
			return o.epoch > e0 && o.primary >= 0 && o.primary != old && o.primaryHealthy
		})
		l.waitAcks(t, 200, "after the failover")
		res := l.finish(t)
		st, _ := l.longestStall(killed)
		commits = append(commits, commit.at.Sub(killed))
		healthies = append(healthies, healthy.at.Sub(killed))
		gaps = append(gaps, res.MaxGap)
		t.Logf("kill %d/%d of %s: new epoch after %v, controller %d healthy primary after %v, host I/O resumed "+
			"%v after the kill (%v after healthy); host's longest gap %v (%d writes)", i+1, n, victim,
			ms(commit.at.Sub(killed)), healthy.primary, ms(healthy.at.Sub(killed)), ms(st.to.Sub(killed)),
			ms(st.to.Sub(healthy.at)), ms(res.MaxGap), res.Acked)
		t.Logf("host stalls since the kill: %s", l.stallsSince(killed))
		require.Equal(t, e0+1, c.epoch(t, ctx, a), "failovers for one kill; timeline:\n%s", timelineString(w))
		h.verify(t, ctx, res)

		c.restart(t, ctx, victim)
		c.waitSettled(t, ctx, a, healthy.primary)
		require.Equal(t, e0+1, c.epoch(t, ctx, a), "the killed node's return changed the epoch; timeline:\n%s",
			timelineString(w))
		c.verifyEverywhere(t, ctx, "host0", a.nqn(), hostNQN, res)
	}
	if n > 1 {
		t.Logf("over %d kills: new epoch p50 %v p99 %v; healthy primary p50 %v p99 %v; host gap p50 %v p99 %v", n,
			pct(commits, 50), pct(commits, 99), pct(healthies, 50), pct(healthies, 99), pct(gaps, 50), pct(gaps, 99))
	}
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// pct returns the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))].Round(time.Millisecond)
}

// testSwitchover moves the primary there and back with vda da switchover
// while host0 writes: no spdk_tgt crashes, nothing is lost, and each
// switchover raises the epoch once.
func (c *cluster) testSwitchover(t *testing.T) {
	ctx := c.begin(t)
	a := c.createArray(t, ctx, "sw")
	w := c.watch(t, a)
	h := c.connect(t, ctx, "host0", a.nqn(), hostNQN)
	da := c.waitSettled(t, ctx, a, -1)
	e0, first := da.GetEpoch(), primaryOf(da)
	l := h.startLoad(t, ctx)
	l.waitAcks(t, 200, "before the switchover")
	for i, to := range []int{1 - first, first} {
		start := time.Now()
		out, err := c.VDA(ctx, "cli", "--addr-port", "192.168.0.11:9520", "da", "switchover", "--da-name", a.name,
			"--cntlr-idx", strconv.Itoa(to))
		require.NoError(t, err, out)
		c.waitSettled(t, ctx, a, to)
		t.Logf("switchover to controller %d settled in %v", to, time.Since(start).Round(time.Millisecond))
		l.waitAcks(t, 200, "after the switchover")
		require.Equal(t, e0+int64(i)+1, c.epoch(t, ctx, a), "epoch after switchover %d; timeline:\n%s", i+1,
			timelineString(w))
		c.checkCrashes(t)
	}
	res := l.finish(t)
	t.Logf("host's longest gap over two switchovers: %v (%d writes)", res.MaxGap.Round(time.Millisecond), res.Acked)
	c.verifyEverywhere(t, ctx, "host0", a.nqn(), hostNQN, res)
}

// testFalseFailures stops (SIGSTOP) a live primary's processes for longer
// than failure detection takes, then continues them (SIGCONT): its agent,
// then its spdk_tgt, then the spdk_tgt of each new primary right after the
// array settled, three times in a row. Each stop is one failover; the
// stopped node comes back as a secondary; nothing crashes or is lost.
func (c *cluster) testFalseFailures(t *testing.T) {
	ctx := c.begin(t)
	a := c.createArray(t, ctx, "ff")
	w := c.watch(t, a)
	h := c.connect(t, ctx, "host0", a.nqn(), hostNQN)
	e0 := c.epoch(t, ctx, a)
	l := h.startLoad(t, ctx)
	l.waitAcks(t, 200, "before the first stop")
	steps := []string{"agent", "spdk_tgt", "spdk_tgt", "spdk_tgt", "spdk_tgt"}
	for i, what := range steps {
		da := c.waitSettled(t, ctx, a, -1)
		old := primaryOf(da)
		cn := c.nodes[cnOf(da, old)]
		p := cn.agent
		if what == "spdk_tgt" {
			p = cn.tgt.Proc
		}
		stopped := time.Now()
		require.NoError(t, p.Pause())
		timer := time.NewTimer(stopFor) // the outage itself, not a wait for anything
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
		require.NoError(t, p.Resume())
		t.Logf("stop %d: %s of %s stopped for %v", i+1, what, cn.name, time.Since(stopped).Round(time.Millisecond))
		o := w.waitFor(t, stopped, fmt.Sprintf("a new primary after stop %d", i+1), func(o obs) bool {
			return o.primary >= 0 && o.primary != old && o.primaryHealthy
		})
		c.waitSettled(t, ctx, a, o.primary)
		l.waitAcks(t, 100, fmt.Sprintf("after stop %d", i+1))
		st, _ := l.longestStall(stopped)
		t.Logf("stop %d: controller %d healthy primary after %v; host I/O stalled %v, resumed %v after the stop",
			i+1, o.primary, ms(o.at.Sub(stopped)), ms(st.to.Sub(st.from)), ms(st.to.Sub(stopped)))
		require.Equal(t, e0+int64(i)+1, c.epoch(t, ctx, a), "failovers after stop %d; timeline:\n%s", i+1,
			timelineString(w))
	}
	res := l.finish(t)
	t.Logf("host's longest gap over %d stops: %v (%d writes)", len(steps), res.MaxGap.Round(time.Millisecond), res.Acked)
	da := c.waitSettled(t, ctx, a, -1)
	require.GreaterOrEqual(t, primaryOf(da), 0, "exactly one primary")
	c.verifyEverywhere(t, ctx, "host0", a.nqn(), hostNQN, res)
}

// maxHealthyToIO bounds how long after the DA reports healthy a host that
// connects then needs to write a block: healthy must mean usable. The
// margin covers status polling and a connection on a loaded machine.
const maxHealthyToIO = 5 * time.Second

// testDiskNodeRestart kills a disk node (spdk_tgt and agent) while host0
// writes and starts it again on the same aio file: the array is degraded
// meanwhile, recovers without a controller failover, says healthy only
// once host I/O works again, and loses nothing.
func (c *cluster) testDiskNodeRestart(t *testing.T) {
	ctx := c.begin(t)
	a := c.createArray(t, ctx, "dnr")
	w := c.watch(t, a)
	h := c.connect(t, ctx, "host0", a.nqn(), hostNQN)
	da := c.waitSettled(t, ctx, a, -1)
	e0, primary := da.GetEpoch(), primaryOf(da)
	l := h.startLoad(t, ctx)
	l.waitAcks(t, 200, "before the kill")
	killed := time.Now()
	c.kill("dn1")
	w.waitFor(t, killed, "dn1's VD not healthy while dn1 is down", func(o obs) bool {
		return strings.Contains(o.badDNs, ipOf("dn1")+":") && !o.settled
	})
	restarted := time.Now()
	c.restart(t, ctx, "dn1")
	healthy := w.waitFor(t, restarted, "the array healthy again", func(o obs) bool { return o.settled })
	// Healthy must mean usable: a host that connects now writes at once.
	done, errs := c.probeWrite(t, ctx, a)
	first := done.Sub(healthy.at)
	if len(errs) > 0 {
		t.Logf("a new connection failed %d times once the array said healthy: first %v, last %v", len(errs),
			errs[0], errs[len(errs)-1])
	}
	l.waitAcks(t, 200, "after dn1 returned")
	st, _ := l.longestStall(killed)
	t.Logf("dn1 down %v; array healthy %v after the restart; a new connection's write done %v after healthy; "+
		"the running writes resumed %v after healthy (stalls since the kill: %s)", ms(restarted.Sub(killed)),
		ms(healthy.at.Sub(restarted)), ms(first), ms(st.to.Sub(healthy.at)), l.stallsSince(killed))
	require.LessOrEqual(t, first, maxHealthyToIO, "the array said healthy %v before a host could write", first)
	res := l.finish(t)
	require.Equal(t, e0, c.epoch(t, ctx, a), "a disk node failure failed a controller over; timeline:\n%s",
		timelineString(w))
	c.waitSettled(t, ctx, a, primary)
	c.verifyEverywhere(t, ctx, "host0", a.nqn(), hostNQN, res)
}

// testControllerNodeRestart restarts the secondary's node (SIGTERM, then
// start again) while host0 writes: the primary stays healthy and primary,
// the node rejoins as a secondary, and nothing is lost.
func (c *cluster) testControllerNodeRestart(t *testing.T) {
	ctx := c.begin(t)
	a := c.createArray(t, ctx, "cnr")
	w := c.watch(t, a)
	h := c.connect(t, ctx, "host0", a.nqn(), hostNQN)
	da := c.waitSettled(t, ctx, a, -1)
	e0, primary := da.GetEpoch(), primaryOf(da)
	secondary := c.nodes[cnOf(da, 1-primary)]
	l := h.startLoad(t, ctx)
	l.waitAcks(t, 200, "before the restart")
	stopped := time.Now()
	for _, p := range []*testproc.Proc{secondary.agent, secondary.tgt.Proc} {
		require.NoError(t, p.Stop(), "%s stopped uncleanly\n%s", p.Name(), p.Tail(3000))
	}
	w.waitFor(t, stopped, "the array degraded while "+secondary.name+" is down", func(o obs) bool { return !o.settled })
	c.restart(t, ctx, secondary.name)
	c.waitSettled(t, ctx, a, primary)
	l.waitAcks(t, 200, "after the restart")
	res := l.finish(t)
	require.Equal(t, e0, c.epoch(t, ctx, a), "a secondary's restart failed the primary over; timeline:\n%s",
		timelineString(w))
	for _, o := range w.timeline() {
		require.True(t, o.primary == primary && o.primaryHealthy, "the primary was not healthy at %v; timeline:\n%s",
			o, timelineString(w))
	}
	t.Logf("host's longest gap across the secondary's restart: %v (%d writes)", res.MaxGap.Round(time.Millisecond), res.Acked)
	c.verifyEverywhere(t, ctx, "host0", a.nqn(), hostNQN, res)
}

// loadFor is how long CPULoad keeps every core busy.
const loadFor = time.Minute

// testCPULoad keeps every core busy with a spinning process for a minute
// next to the cluster while host0 writes: a slow node is not a dead one, so
// there is no failover.
func (c *cluster) testCPULoad(t *testing.T) {
	ctx := c.begin(t)
	a := c.createArray(t, ctx, "cpu")
	w := c.watch(t, a)
	h := c.connect(t, ctx, "host0", a.nqn(), hostNQN)
	da := c.waitSettled(t, ctx, a, -1)
	e0, primary := da.GetEpoch(), primaryOf(da)
	l := h.startLoad(t, ctx)
	l.waitAcks(t, 200, "before the load")
	var spinners []*testproc.Proc
	for i := range runtime.NumCPU() {
		spinners = append(spinners, testproc.StartT(t, testproc.Spec{Name: fmt.Sprintf("spin%d", i),
			Cmd: exec.Command("sh", "-c", "while :; do :; done"), LogPath: os.DevNull}))
	}
	timer := time.NewTimer(loadFor) // the load's duration, not a wait for anything
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
	}
	for _, p := range spinners {
		_ = p.Kill()
	}
	l.waitAcks(t, 100, "after the load")
	res := l.finish(t)
	t.Logf("host's longest gap under %v of CPU load: %v (%d writes)", loadFor, res.MaxGap.Round(time.Millisecond), res.Acked)
	require.Equal(t, e0, c.epoch(t, ctx, a), "failovers under CPU load; timeline:\n%s", timelineString(w))
	c.waitSettled(t, ctx, a, primary)
	c.verifyEverywhere(t, ctx, "host0", a.nqn(), hostNQN, res)
}
