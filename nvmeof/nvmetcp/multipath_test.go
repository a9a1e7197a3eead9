package nvmetcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// The workload that proves nothing acknowledged is lost drives a Multipath.
var _ fabric.BlockIO = (*Multipath)(nil)

// testPaths is one subsystem (one disk) behind several scripted targets.
type testPaths struct {
	disk    *testDisk
	targets map[string]*testTarget
	addrs   []string
	dials   atomic.Int64
}

func newTestPaths(t testing.TB, states ...ANAState) *testPaths {
	tp := &testPaths{disk: newTestDisk(512, 4096), targets: map[string]*testTarget{}}
	for i, s := range states {
		tt := newTestTarget(testSub, tp.disk)
		tt.ana, tt.anaState, tt.cntlidBase = true, s, uint16(i*1000)
		addr := fmt.Sprintf("10.0.0.%d:4420", i+1)
		tp.targets[addr] = tt
		tp.addrs = append(tp.addrs, addr)
		t.Cleanup(tt.shutdown)
	}
	return tp
}

func (tp *testPaths) target(i int) *testTarget { return tp.targets[tp.addrs[i]] }

func (tp *testPaths) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	tp.dials.Add(1)
	tt := tp.targets[addr]
	if tt == nil {
		return nil, fmt.Errorf("no route to %s", addr)
	}
	return tt.dial(ctx, network, addr)
}

func (tp *testPaths) multipath(t testing.TB, o MultipathOptions) *Multipath {
	t.Helper()
	o.HostNQN, o.Dial = testHost, tp.dial
	m, err := NewMultipath(tp.addrs, testSub, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestMultipathPrefersOptimized(t *testing.T) {
	tp := newTestPaths(t, ANANonOptimized, ANAOptimized)
	m := tp.multipath(t, MultipathOptions{})
	ctx := context.Background()
	require.NoError(t, m.Connect(ctx))
	for i := range 10 {
		require.NoError(t, m.WriteAt(ctx, 1, pattern(512, uint64(i)), int64(i)*512))
	}
	ps := m.Paths()
	require.Len(t, ps, 2)
	require.Equal(t, tp.addrs[0], ps[0].Addr)
	require.True(t, ps[0].Connected)
	require.Equal(t, ANANonOptimized, ps[0].ANAState)
	require.Equal(t, map[uint32]ANAState{1: ANANonOptimized}, ps[0].ANAStates)
	require.Equal(t, uint16(1), ps[0].CntlID)
	require.Equal(t, ANAOptimized, ps[1].ANAState)
	require.Equal(t, uint16(1001), ps[1].CntlID)
	require.Equal(t, uint64(0), ps[0].IOs)
	require.Equal(t, uint64(10), ps[1].IOs)
	require.Equal(t, MultipathStats{IOs: 10, Connects: 2}, m.Stats())

	ni, err := m.Namespace(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint32(512), ni.BlockSize)
	require.Equal(t, tp.disk.uuid, ni.UUID)
}

func TestMultipathConnectsOptimizedInBackground(t *testing.T) {
	tp := newTestPaths(t, ANANonOptimized, ANAOptimized)
	tp.target(1).setRefuse(errors.New("connection refused"))
	m := tp.multipath(t, MultipathOptions{ReconnectDelay: time.Millisecond, MaxReconnectDelay: time.Millisecond})
	ctx := context.Background()
	require.NoError(t, m.WriteAt(ctx, 1, make([]byte, 512), 0), "served by the non-optimized path")
	require.Equal(t, uint64(1), m.Paths()[0].IOs)
	require.Eventually(t, func() bool {
		require.NoError(t, m.WriteAt(ctx, 1, make([]byte, 512), 0))
		return m.Stats().ConnectFailures > 0
	}, time.Minute, time.Millisecond, "I/O on the non-optimized path tries the other one in the background")
	require.False(t, m.Paths()[1].Connected)
	tp.target(1).setRefuse(nil)
	// Every I/O on the non-optimized path kicks a background connect of
	// the other path until it succeeds.
	require.Eventually(t, func() bool {
		require.NoError(t, m.WriteAt(ctx, 1, make([]byte, 512), 0))
		return m.Paths()[1].Connected
	}, time.Minute, time.Millisecond)
	before := m.Paths()
	require.NoError(t, m.WriteAt(ctx, 1, make([]byte, 512), 0))
	after := m.Paths()
	require.Equal(t, before[1].IOs+1, after[1].IOs, "I/O moved to the optimized path")
	require.Equal(t, before[0].IOs, after[0].IOs)
}

func TestMultipathReconnectsAPathLostWhileIdle(t *testing.T) {
	tp := newTestPaths(t, ANANonOptimized, ANAOptimized)
	m := tp.multipath(t, MultipathOptions{})
	ctx := context.Background()
	require.NoError(t, m.Connect(ctx))
	tp.target(1).dropAll() // the optimized path dies while no I/O runs
	require.Eventually(t, func() bool { return !m.Paths()[1].Connected }, time.Minute, time.Millisecond)
	// I/O goes to the non-optimized path and brings the optimized one back
	// in the background.
	require.Eventually(t, func() bool {
		require.NoError(t, m.WriteAt(ctx, 1, make([]byte, 512), 0))
		return m.Paths()[1].Connected
	}, time.Minute, time.Millisecond)
	before := m.Paths()
	require.NoError(t, m.WriteAt(ctx, 1, make([]byte, 512), 0))
	after := m.Paths()
	require.Equal(t, before[1].IOs+1, after[1].IOs, "back on the optimized path")
	require.Equal(t, uint64(3), m.Stats().Connects)
	require.ErrorContains(t, after[1].LastErr, "connection closed by the target")
}

func TestMultipathFailsOverWithoutLosingWrites(t *testing.T) {
	tp := newTestPaths(t, ANAOptimized, ANANonOptimized)
	m := tp.multipath(t, MultipathOptions{RetryInterval: time.Millisecond, ReconnectDelay: time.Millisecond,
		MaxReconnectDelay: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, m.Connect(ctx))

	acked := make(chan uint64, 1)
	stop := make(chan struct{})
	var res fabric.SeqResult
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, runErr = fabric.RunSeq(ctx, m, fabric.SeqWorkload{NSID: 1, BlockSize: 512, Blocks: 1000, Stop: stop,
			OnAck: func(n uint64) {
				select {
				case acked <- n:
				default:
				}
			}})
	}()
	// progress waits until n more writes were acknowledged.
	progress := func(n uint64) {
		t.Helper()
		if err := waitAcks(acked, done, nil, n); err != nil {
			t.Fatalf("%v: %v", err, runErr)
		}
	}
	iosOf := func(i int) uint64 { return m.Paths()[i].IOs }

	progress(50)
	require.Zero(t, iosOf(1), "all I/O on the optimized path")
	// Path 0 goes inaccessible (no notice: the host learns it from a failed I/O).
	tp.target(0).setANA(ANAInaccessible, false)
	tp.target(1).setANA(ANAOptimized, false)
	before := iosOf(1)
	progress(50)
	require.Greater(t, iosOf(1), before, "I/O moved to path 1")
	require.Equal(t, ANAInaccessible, m.Paths()[0].ANAState, "read again after the failed I/O")

	// Path 0 comes back optimized (with a notice), then path 1 vanishes.
	tp.target(0).setANA(ANAOptimized, true)
	require.Eventually(t, func() bool { return m.Paths()[0].ANAState == ANAOptimized }, time.Minute, time.Millisecond)
	tp.target(1).setRefuse(errors.New("connection refused"))
	tp.target(1).dropAll()
	before = iosOf(0)
	progress(50)
	require.Greater(t, iosOf(0), before, "I/O back on path 0")

	// Path 0 vanishes too, and path 1 comes back: the reconnect wins.
	tp.target(1).setRefuse(nil)
	tp.target(0).setRefuse(errors.New("connection refused"))
	tp.target(0).dropAll()
	before = iosOf(1)
	progress(50)
	require.Greater(t, iosOf(1), before, "I/O on the reconnected path 1")

	close(stop)
	<-done
	require.NoError(t, runErr)
	require.GreaterOrEqual(t, res.Acked, uint64(200))
	require.NoError(t, fabric.VerifySeq(ctx, m, res))
	st := m.Stats()
	require.NotZero(t, st.Retries)
	require.GreaterOrEqual(t, st.Connects, uint64(3))
}

func TestMultipathInvalidRequestFailsAtOnce(t *testing.T) {
	tp := newTestPaths(t, ANAOptimized, ANAOptimized)
	m := tp.multipath(t, MultipathOptions{})
	ctx := context.Background()
	require.ErrorIs(t, m.WriteAt(ctx, 1, make([]byte, 100), 0), ErrInvalid)
	require.ErrorIs(t, m.ReadAt(ctx, 1, make([]byte, 512), 4096*512), ErrInvalid)
	require.Zero(t, m.Stats().Retries)
	_, err := m.Namespace(ctx, 9)
	require.ErrorIs(t, err, ErrNoNamespace, "every path says so")
}

func TestMultipathBacksOffUntilContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tp := newTestPaths(t, ANAOptimized, ANAOptimized)
		tp.target(0).setRefuse(errors.New("connection refused"))
		tp.target(1).setRefuse(errors.New("connection refused"))
		m := tp.multipath(t, MultipathOptions{RetryInterval: 50 * time.Millisecond,
			ReconnectDelay: 100 * time.Millisecond, MaxReconnectDelay: 2 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := m.ReadAt(ctx, 1, make([]byte, 512), 0)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, "connection refused")
		// Attempts per path at 0, 0.1, 0.3 and 0.7 s (delays 100, 200, 400, 800 ms).
		require.Equal(t, int64(8), tp.dials.Load())
		require.Equal(t, uint64(8), m.Stats().ConnectFailures)
		ps := m.Paths()
		require.False(t, ps[0].Connected)
		require.ErrorContains(t, ps[0].LastErr, "connection refused")
	})
}

func TestMultipathCloseEndsIO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tp := newTestPaths(t, ANAOptimized)
		tp.target(0).setRefuse(errors.New("connection refused"))
		m := tp.multipath(t, MultipathOptions{})
		errc := make(chan error)
		go func() { errc <- m.WriteAt(context.Background(), 1, make([]byte, 512), 0) }()
		time.Sleep(time.Second)
		require.NoError(t, m.Close())
		require.ErrorIs(t, <-errc, ErrClosed)
		require.NoError(t, m.Close(), "Close is idempotent")
		require.ErrorIs(t, m.ReadAt(context.Background(), 1, make([]byte, 512), 0), ErrClosed)
	})
}

func TestNewMultipathValidates(t *testing.T) {
	o := MultipathOptions{Options: Options{HostNQN: testHost}}
	_, err := NewMultipath(nil, testSub, o)
	require.ErrorIs(t, err, ErrNoPath)
	_, err = NewMultipath([]string{"a:1", "a:1"}, testSub, o)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewMultipath([]string{"a"}, testSub, o)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewMultipath([]string{"a:1"}, "", o)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewMultipath([]string{"a:1"}, testSub, MultipathOptions{})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewMultipath([]string{"a:1"}, testSub, MultipathOptions{Options: o.Options, RetryInterval: -1})
	require.ErrorIs(t, err, ErrInvalid)
}

// I/O for a namespace that no path has keeps retrying until the context
// ends (a controller's path lacks it for a moment while its role changes);
// only a lookup fails at once.
func TestMultipathIOWaitsForAMissingNamespace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tp := newTestPaths(t, ANAOptimized, ANAOptimized)
		m := tp.multipath(t, MultipathOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := m.WriteAt(ctx, 9, make([]byte, 512), 0)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotZero(t, m.Stats().Retries, "retried, not failed at once")
		lastErrs := ""
		for _, p := range m.Paths() {
			lastErrs += fmt.Sprint(p.LastErr)
		}
		require.Contains(t, lastErrs, "no such namespace", "the paths say why")
	})
}

// waitAcks returns once n more writes of a sequential workload were
// acknowledged after the call, or an error when done closes (the workload
// stopped) or timeout fires first. acked is the workload's OnAck channel:
// it keeps one ack and drops the others while it is full, so the one it
// holds may be long stale. It is dropped, and the count starts at the
// next ack: that write was issued after the call, or acknowledged just
// before it with the next one issued after.
func waitAcks(acked <-chan uint64, done <-chan struct{}, timeout <-chan time.Time, n uint64) error {
	select {
	case <-acked:
	default:
	}
	var first uint64
	for got := false; ; {
		select {
		case a := <-acked:
			if !got {
				first, got = a, true
			} else if a >= first+n {
				return nil
			}
		case <-done:
			return errors.New("the workload stopped")
		case <-timeout:
			return errors.New("no progress")
		}
	}
}
