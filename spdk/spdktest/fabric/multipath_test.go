package fabric

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

var errProxy = errors.New("proxy: path to the primary failed")

// failingDevice fails every I/O while broken is set: a secondary that
// proxies to a dead primary.
type failingDevice struct {
	blockdev.Device
	broken chan struct{} // closed: I/O fails
}

func (d *failingDevice) failing() bool {
	select {
	case <-d.broken:
		return true
	default:
		return false
	}
}

func (d *failingDevice) ReadAt(p []byte, off int64) (int, error) {
	if d.failing() {
		return 0, errProxy
	}
	return d.Device.ReadAt(p, off)
}

func (d *failingDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.failing() {
		return 0, errProxy
	}
	return d.Device.WriteAt(p, off)
}

func newMultipath(t *testing.T, paths ...TransportID) *Multipath {
	t.Helper()
	o := DefaultMultipathOptions()
	o.RetryInterval = time.Millisecond
	m, err := NewMultipath(paths, subNQN, host1, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestMultipathPrefersOptimizedAndFailsOver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := blockdev.NewMemory(512, 4096)
	devA := &failingDevice{Device: mem, broken: make(chan struct{})}
	tgA, a := newTarget(t, devA)
	tgB, b := newTarget(t, mem)
	tgB.SetANAState(subNQN, b, ANANonOptimized)

	m := newMultipath(t, b, a) // the optimized path is listed second
	require.NoError(t, m.Connect(ctx))
	res, err := RunSeq(ctx, m, SeqWorkload{NSID: 1, BlockSize: 512, Blocks: 100, Count: 150})
	require.NoError(t, err)
	require.EqualValues(t, 150, res.Acked)
	require.Positive(t, res.Elapsed, "the result reports how long the run took")
	sessA, sessB := len(tgA.Sessions(subNQN)), len(tgB.Sessions(subNQN))
	require.Equal(t, 1, sessA)
	require.Equal(t, 1, sessB)

	// Path A starts failing every I/O and B becomes optimized: I/O moves
	// to B and nothing acknowledged is lost.
	close(devA.broken)
	tgB.SetANAState(subNQN, b, ANAOptimized)
	tgA.SetANAState(subNQN, a, ANANonOptimized)
	res2, err := RunSeq(ctx, m, SeqWorkload{NSID: 1, BlockSize: 512, Blocks: 100, Count: 150, RunID: res.RunID})
	require.NoError(t, err)
	require.NoError(t, VerifySeq(ctx, m, res2))
	require.Positive(t, m.Stats().IOs)
}

func TestMultipathWaitsForAPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := blockdev.NewMemory(512, 256)
	tgA, a := newTarget(t, mem)
	m := newMultipath(t, a)
	require.NoError(t, m.WriteAt(ctx, 1, make([]byte, 512), 0))

	// The only path goes away: I/O fails until the context ends.
	require.NoError(t, tgA.Close())
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	err := m.WriteAt(short, 1, make([]byte, 512), 0)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Positive(t, m.Stats().Retries)
	require.False(t, m.Paths()[0].Connected)
}

func TestMultipathInvalidRequestFailsAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, a := newTarget(t, blockdev.NewMemory(512, 16))
	m := newMultipath(t, a)
	err := m.WriteAt(ctx, 1, make([]byte, 512), 512*16)
	require.ErrorIs(t, err, blockdev.ErrOutOfRange)
	require.NoError(t, ctx.Err())
}

func TestNewMultipathValidates(t *testing.T) {
	_, err := NewMultipath(nil, subNQN, host1, MultipathOptions{})
	require.ErrorIs(t, err, ErrNoPath)
	_, err = NewMultipath([]TransportID{{TrType: "RDMA", TrAddr: "x", TrSvcID: "1"}}, subNQN, host1, MultipathOptions{})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = NewMultipath([]TransportID{loopback()}, "", host1, MultipathOptions{})
	require.ErrorIs(t, err, ErrInvalid)
}

func TestVerifySeqFindsLostWrite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mem := blockdev.NewMemory(512, 64)
	_, a := newTarget(t, mem)
	m := newMultipath(t, a)
	res, err := RunSeq(ctx, m, SeqWorkload{NSID: 1, BlockSize: 512, Blocks: 32, Count: 70})
	require.NoError(t, err)
	require.NoError(t, VerifySeq(ctx, m, res))

	// Losing an acknowledged write (block 3 rolled back to zeros) is found.
	_, err = mem.WriteAt(make([]byte, 512), 3*512)
	require.NoError(t, err)
	err = VerifySeq(ctx, m, res)
	require.ErrorIs(t, err, ErrVerify)
	require.Contains(t, err.Error(), "block 3")

	// Claiming more than was written is found too.
	res.Acked += 5
	require.True(t, errors.Is(VerifySeq(ctx, m, res), ErrVerify))
}

func TestRunSeqStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, a := newTarget(t, blockdev.NewMemory(512, 64))
	m := newMultipath(t, a)
	stop := make(chan struct{})
	close(stop)
	res, err := RunSeq(ctx, m, SeqWorkload{NSID: 1, BlockSize: 512, Blocks: 8, Stop: stop})
	require.NoError(t, err)
	require.Zero(t, res.Acked)
	_, err = RunSeq(ctx, m, SeqWorkload{NSID: 1, BlockSize: 100, Blocks: 8})
	require.ErrorIs(t, err, ErrInvalid)
}
