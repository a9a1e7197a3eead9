package monitor

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// End-to-end tests: real agents (package agent) on fake SPDKs whose
// NVMe-oF fabric is real TCP, a test host (fabric.Dial) as the initiator.

const block = 4096

func blockData(i int) []byte {
	b := bytes.Repeat([]byte{byte(i), byte(i >> 8), 0xa5, 0x5a}, block/4)
	return b
}

// writer writes distinct blocks until its connection fails or it is
// stopped, and remembers which writes were acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []int
	done  chan struct{}
	stop  chan struct{}
}

func startWriter(conn *fabric.Conn) *writer {
	w := &writer{done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			if _, err := conn.WriteAt(1, blockData(i), int64(i%4096)*block); err != nil {
				return
			}
			w.mu.Lock()
			w.acked = append(w.acked, i)
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) finish() []int {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.acked
}

// verify reads every acknowledged block (the last write of each offset)
// back through conn.
func verify(t *testing.T, conn *fabric.Conn, acked []int) {
	t.Helper()
	last := map[int]int{}
	for _, i := range acked {
		last[i%4096] = i
	}
	got := make([]byte, block)
	for off, i := range last {
		_, err := conn.ReadAt(1, got, int64(off)*block)
		require.NoError(t, err)
		require.True(t, bytes.Equal(blockData(i), got), "block %d (write %d) differs", off, i)
	}
}

func waitServed(t *testing.T, rc *realCluster, names ...string) {
	t.Helper()
	eventually(t, func() bool {
		for _, n := range names {
			if !rc.served(n) {
				return false
			}
		}
		return true
	}, 60*time.Second, 10*time.Millisecond)
}

// Kill the primary CN (agent and SPDK) while a host writes: every write it
// acknowledged before reads back through the new primary, which exports
// the DA ANA optimized under the same NQN. The old CN returns as a
// secondary, and the host can read through it too.
func TestRealFailoverKeepsData(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 2)
	before := rc.createDA("da0", 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	waitServed(t, rc, "da0")
	oldP, _ := before.Primary()
	old := rc.node(oldP.CNName)
	conn, err := rc.dialExport(old, "da0")
	require.NoError(t, err)
	w := startWriter(conn)
	eventually(t, func() bool { return w.count() >= 200 }, wait, time.Millisecond)
	old.kill()
	acked := w.finish()
	require.NotEmpty(t, acked)

	eventually(t, func() bool { return rc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	da := rc.da("da0")
	newP, _ := da.Primary()
	require.NotEqual(t, oldP.CNName, newP.CNName)
	eventually(t, func() bool { return rc.node(newP.CNName).anaOptimized(expNQN(t, "da0")) }, 60*time.Second, 10*time.Millisecond)
	conn2, err := rc.dialExport(rc.node(newP.CNName), "da0")
	require.NoError(t, err)
	verify(t, conn2, acked)
	_, err = conn2.WriteAt(1, blockData(9999), 0)
	require.NoError(t, err, "the new primary takes writes")

	old.restart()
	waitServed(t, rc, "da0")
	eventually(t, func() bool {
		ls, err := old.spdk.NvmfSubsystemGetListeners(context.Background(), spdkNQN("da0"))
		return err == nil && len(ls) == 1 && ls[0].State(1) == spdk.ANANonOptimized
	}, 60*time.Second, 10*time.Millisecond, "the old primary is back as a secondary")
	conn3, err := rc.dialExport(old, "da0")
	require.NoError(t, err)
	got := make([]byte, block)
	_, err = conn3.ReadAt(1, got, 0)
	require.NoError(t, err)
	require.Equal(t, blockData(9999), got, "the returning CN proxies to the new primary")
	require.EqualValues(t, 2, rc.da("da0").Epoch)
}

// An old primary that is only partitioned from the monitor (its SPDK still
// runs and is still connected to the DNs) can no longer write to any VD
// once the DNs are fenced: its connections are dropped, it cannot
// reconnect, and writes through its export fail.
func TestRealPartitionedPrimaryIsFenced(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 2)
	before := rc.createDA("da0", 2, 2)
	startMonitor(t, testConfig(s, "m0"))
	waitServed(t, rc, "da0")
	oldP, _ := before.Primary()
	old := rc.node(oldP.CNName)
	viaOld, err := rc.dialExport(old, "da0")
	require.NoError(t, err)
	_, err = viaOld.WriteAt(1, blockData(1), 0)
	require.NoError(t, err)
	oldHost := string(nvmeof.PrimaryHostNQN(oldP.ID, uint64(before.Epoch)))
	// What the old primary holds, as a test connection under its host NQN.
	var asOld []*fabric.Conn
	for _, vd := range before.VDs {
		c, err := fabric.Dial(context.Background(), rc.node(vd.DNName).trid(), string(nvmeof.VDNQN(vd.ID)), oldHost)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		asOld = append(asOld, c)
	}

	old.partition()
	eventually(t, func() bool { return rc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	for i, vd := range before.VDs {
		select {
		case <-asOld[i].Done():
		case <-time.After(wait):
			t.Fatalf("vd %d: the old primary is still connected", i)
		}
		_, err := fabric.Dial(context.Background(), rc.node(vd.DNName).trid(), string(nvmeof.VDNQN(vd.ID)), oldHost)
		require.ErrorIs(t, err, fabric.ErrNotAllowed, "vd %d admits the old primary again", i)
	}
	eventually(t, func() bool {
		_, err := viaOld.WriteAt(1, blockData(2), 0)
		return err != nil
	}, wait, 5*time.Millisecond, "the partitioned primary still writes")

	waitServedIgnoringDead(t, rc, "da0")
	newP, _ := rc.da("da0").Primary()
	conn, err := rc.dialExport(rc.node(newP.CNName), "da0")
	require.NoError(t, err)
	got := make([]byte, block)
	_, err = conn.ReadAt(1, got, 0)
	require.NoError(t, err)
	require.Equal(t, blockData(1), got, "nothing the old primary tried after the fence landed")
}

// A three-controller DA: after the primary dies, the new primary serves
// and the other secondary re-points to it (a host reading through it sees
// the data), ANA non-optimized.
func TestRealThreeControllersRepoint(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 3)
	before := rc.createDA("da0", 2, 3)
	startMonitor(t, testConfig(s, "m0"))
	waitServed(t, rc, "da0")
	oldP, _ := before.Primary()
	conn, err := rc.dialExport(rc.node(oldP.CNName), "da0")
	require.NoError(t, err)
	w := startWriter(conn)
	eventually(t, func() bool { return w.count() >= 100 }, wait, time.Millisecond)
	acked := w.finish()
	rc.node(oldP.CNName).kill()
	eventually(t, func() bool { return rc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	waitServedIgnoringDead(t, rc, "da0")
	da := rc.da("da0")
	newP, _ := da.Primary()
	for _, c := range da.Cntlrs {
		if c.ID == newP.ID || c.ID == oldP.ID {
			continue
		}
		other := rc.node(c.CNName)
		eventually(t, func() bool {
			ls, err := other.spdk.NvmfSubsystemGetListeners(context.Background(), spdkNQN("da0"))
			return err == nil && len(ls) == 1 && ls[0].State(1) == spdk.ANANonOptimized
		}, 60*time.Second, 10*time.Millisecond)
		var via *fabric.Conn
		eventually(t, func() bool {
			var err error
			via, err = rc.dialExport(other, "da0")
			if err != nil {
				return false
			}
			got := make([]byte, block)
			_, err = via.ReadAt(1, got, 0)
			return err == nil
		}, 60*time.Second, 10*time.Millisecond, "the other secondary proxies to the new primary")
		verify(t, via, acked)
	}
}

// waitServedIgnoringDead: initialized and exported ANA optimized by the
// primary, with the dead controller's part failed (so the DA is degraded).
func waitServedIgnoringDead(t *testing.T, rc *realCluster, names ...string) {
	t.Helper()
	eventually(t, func() bool {
		for _, name := range names {
			da := rc.da(name)
			p, _ := da.Primary()
			if !da.Initialized || da.Status.Part(p.ID).Health != vda.HealthHealthy ||
				!rc.node(p.CNName).anaOptimized(expNQN(t, name)) {
				return false
			}
		}
		return true
	}, 60*time.Second, 10*time.Millisecond)
}

// Many DAs whose primaries are all on one CN: it dies, every DA is served
// by a new primary.
func TestRealManyDAsOnOneFailedCN(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 2)
	const n = 12
	var names []string
	for i := 0; i < n; i++ {
		names = append(names, fmt.Sprintf("da%02d", i))
		rc.createDA(names[i], 1+i%2, 2)
	}
	startMonitor(t, testConfig(s, "m0"))
	waitServed(t, rc, names...)
	count := map[string]int{}
	for _, name := range names {
		p, _ := rc.da(name).Primary()
		count[p.CNName]++
	}
	victim := rc.cns[0]
	if count[rc.cns[1].Addr] > count[victim.Addr] {
		victim = rc.cns[1]
	}
	require.GreaterOrEqual(t, count[victim.Addr], n/2)
	victim.kill()
	waitServedIgnoringDead(t, rc, names...)
	for _, name := range names {
		p, _ := rc.da(name).Primary()
		require.NotEqual(t, victim.Addr, p.CNName)
	}
}

// A monitor that dies right after committing a failover: another monitor
// finishes it, and the data written before reads back.
func TestRealMonitorKilledMidFailover(t *testing.T) {
	s := newMemStore(t)
	rc := newRealCluster(t, s, 2, 2)
	before := rc.createDA("da0", 2, 2)
	f := &freezer{}
	cfgA := testConfig(freezeOnMove{crashable: &crashable{Store: s}, f: f}, "a")
	cfgA.DialOptions = append(cfgA.DialOptions, grpc.WithChainUnaryInterceptor(f.intercept))
	_, stopA := startMonitor(t, cfgA)
	waitServed(t, rc, "da0")
	oldP, _ := before.Primary()
	conn, err := rc.dialExport(rc.node(oldP.CNName), "da0")
	require.NoError(t, err)
	w := startWriter(conn)
	eventually(t, func() bool { return w.count() >= 100 }, wait, time.Millisecond)
	rc.node(oldP.CNName).kill()
	acked := w.finish()
	eventually(t, func() bool { return rc.da("da0").Epoch == 2 }, wait, 5*time.Millisecond)
	require.True(t, f.frozen.Load(), "a committed and froze before pushing")
	stopA()

	startMonitor(t, testConfig(s, "b"))
	waitServedIgnoringDead(t, rc, "da0")
	newP, _ := rc.da("da0").Primary()
	conn2, err := rc.dialExport(rc.node(newP.CNName), "da0")
	require.NoError(t, err)
	verify(t, conn2, acked)
	require.EqualValues(t, 2, rc.da("da0").Epoch)
}
