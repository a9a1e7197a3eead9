package realtier

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// hostConn is a host's view of an array's namespace through some of its
// controllers' listeners (one path, or multipath over several).
type hostConn struct {
	host, nqn string
	paths     []string
	dev       hostDev
	nsid      uint32
	blockSize uint32
	blocks    uint64
}

// connect connects host (host0, host1) to a's exporter through paths
// (controller listeners; every controller's when none are given). The
// connection is closed when t ends.
func (c *cluster) connect(t testing.TB, ctx context.Context, host, nqn, hnqn string, paths ...string) *hostConn {
	t.Helper()
	if len(paths) == 0 {
		paths = []string{cnPaths["cn0"], cnPaths["cn1"]}
	}
	h := &hostConn{host: host, nqn: nqn, paths: paths, nsid: 1}
	var err error
	h.dev, h.blockSize, h.blocks, err = c.open(ctx, host, nqn, hnqn, paths)
	require.NoError(t, err, "%s: connect %s through %v", host, nqn, paths)
	t.Cleanup(func() { _ = h.dev.Close() })
	return h
}

func (h *hostConn) String() string { return fmt.Sprintf("%s via %v", h.host, h.paths) }

// stallsSince lists the stalls that began at or after from, for the log.
func (l *load) stallsSince(from time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, s := range l.stalls {
		if !s.from.Before(from.Add(-stallMin)) {
			fmt.Fprintf(&b, "[%v..%v] ", ms(s.from.Sub(from)), ms(s.to.Sub(from)))
		}
	}
	return b.String()
}

// seqBlocks is the ring a load writes: 4096 blocks span many stripes of
// both VDs whatever the block size.
const seqBlocks = 4096

// ioTimeout bounds one host operation (a write run, a verify, finishing a
// load): the Multipath retries an I/O until its context ends, and a test
// should fail, not hang, when the array never serves again.
const ioTimeout = 2 * time.Minute

// write writes n numbered blocks and returns what was acknowledged.
func (h *hostConn) write(t testing.TB, ctx context.Context, n uint64) fabric.SeqResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	res, err := fabric.RunSeq(ctx, h.dev, h.workload(n))
	require.NoError(t, err, "%s: write: %+v", h, res)
	return res
}

func (h *hostConn) workload(count uint64) fabric.SeqWorkload {
	return fabric.SeqWorkload{NSID: h.nsid, BlockSize: h.blockSize, Blocks: min(seqBlocks, h.blocks), Count: count}
}

// verify reads res back through h.
func (h *hostConn) verify(t testing.TB, ctx context.Context, res fabric.SeqResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	require.NoError(t, fabric.VerifySeq(ctx, h.dev, res), "%s: verify run %x (%d acked)", h, res.RunID, res.Acked)
}

// verifyEverywhere reads res back through each controller's listener on
// its own and through multipath over both.
func (c *cluster) verifyEverywhere(t testing.TB, ctx context.Context, host, nqn, hnqn string, res fabric.SeqResult) {
	t.Helper()
	for _, paths := range [][]string{{cnPaths["cn0"]}, {cnPaths["cn1"]}, {cnPaths["cn0"], cnPaths["cn1"]}} {
		h := c.connect(t, ctx, host, nqn, hnqn, paths...)
		h.verify(t, ctx, res)
		_ = h.dev.Close()
	}
}

// stall is a time without acknowledged writes longer than stallMin.
type stall struct{ from, to time.Time }

const stallMin = 200 * time.Millisecond

// load is fabric.RunSeq in the background: numbered writes until stopped,
// with the times host I/O stalled. A run that fails (the host got an error
// for a write) is recorded, its acknowledged writes are read back at once,
// and a new run carries on, so that a test goes on to check the rest; the
// failures fail the test when it finishes the load.
type load struct {
	h      *hostConn
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
	acks   atomic.Uint64 // over every run

	start    time.Time
	mu       sync.Mutex
	res      fabric.SeqResult // of the last run
	err      error
	failures []runFailure
	last     time.Time
	stalls   []stall
}

// runFailure is a run that ended with a write error.
type runFailure struct {
	at     time.Time
	res    fabric.SeqResult
	err    error
	verify error // reading its acknowledged writes back
}

// startLoad starts writing through h until finish.
func (h *hostConn) startLoad(t testing.TB, ctx context.Context) *load {
	ctx, cancel := context.WithCancel(ctx)
	now := time.Now()
	l := &load{h: h, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{}), start: now, last: now}
	go l.run(ctx)
	t.Cleanup(func() { l.cancel(); <-l.done })
	return l
}

func (l *load) run(ctx context.Context) {
	defer close(l.done)
	for {
		base := l.acks.Load()
		w := l.h.workload(0)
		w.Stop = l.stop
		w.OnAck = func(n uint64) { l.onAck(base + n) }
		res, err := fabric.RunSeq(ctx, l.h.dev, w)
		l.mu.Lock()
		l.res, l.err = res, err
		l.mu.Unlock()
		if err == nil || ctx.Err() != nil || l.stopped() {
			return
		}
		f := runFailure{at: time.Now(), res: res, err: err, verify: verifyRetrying(ctx, l.h, res)}
		l.mu.Lock()
		l.failures = append(l.failures, f)
		l.mu.Unlock()
	}
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// verifyRetrying reads res back through h, retrying while the reads fail
// (the array may still be recovering) for up to ioTimeout; data that
// differs is reported at once.
func verifyRetrying(ctx context.Context, h *hostConn, res fabric.SeqResult) error {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	for {
		err := fabric.VerifySeq(ctx, h.dev, res)
		if err == nil || errors.Is(err, fabric.ErrVerify) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond): // a host's retry interval
		}
	}
}

func (l *load) onAck(n uint64) {
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.last) > stallMin {
		l.stalls = append(l.stalls, stall{l.last, now})
	}
	l.last = now
	l.mu.Unlock()
	l.acks.Store(n)
}

// waitAcks waits until n more writes than now were acknowledged.
func (l *load) waitAcks(t testing.TB, n uint64, why string) {
	t.Helper()
	want := l.acks.Load() + n
	require.Eventually(t, func() bool { return l.acks.Load() >= want || l.ended() }, 3*time.Minute,
		20*time.Millisecond, "host I/O did not progress %s (%d acked)", why, l.acks.Load())
	require.False(t, l.ended() && l.acks.Load() < want, "host I/O ended %s: %v", why, l.lastErr())
}

func (l *load) lastErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *load) ended() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// longestStall returns the longest stall that began at or after from (ok
// false if none did): its end is when host I/O resumed.
func (l *load) longestStall(from time.Time) (st stall, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.stalls {
		if !s.from.Before(from.Add(-stallMin)) && (!ok || s.to.Sub(s.from) > st.to.Sub(st.from)) {
			st, ok = s, true
		}
	}
	return st, ok
}

// halt stops the load: the write in flight may finish within ioTimeout,
// then it is cancelled. It reports whether the load stopped by itself.
func (l *load) halt() bool {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	t := time.NewTimer(ioTimeout)
	defer t.Stop()
	select {
	case <-l.done:
		return true
	case <-t.C:
		l.cancel()
		<-l.done
		return false
	}
}

// finish stops the load and returns what its last run acknowledged. Every
// write error the host got fails t (and says whether the failed run's
// acknowledged writes read back); the last run must end cleanly.
func (l *load) finish(t testing.TB) fabric.SeqResult {
	t.Helper()
	stopped := l.halt()
	l.mu.Lock()
	res, err, failures := l.res, l.err, l.failures
	l.mu.Unlock()
	t.Logf("%s: %d writes in %v, longest gap %v; stalls: %s; paths: %s", l.h, l.acks.Load(), ms(time.Since(l.start)),
		ms(res.MaxGap), l.stallsSince(l.start), pathStats(l.h))
	for _, f := range failures {
		verified := "read back"
		if f.verify != nil {
			verified = "NOT read back: " + f.verify.Error()
		}
		t.Errorf("%s: a write failed %v into the load (run %x, %d acknowledged writes %s): %v", l.h,
			ms(f.at.Sub(l.start)), f.res.RunID, f.res.Acked, verified, f.err)
	}
	require.True(t, stopped, "%s: the host's last write did not complete within %v of the stop: %+v", l.h, ioTimeout, res)
	require.NoError(t, err, "%s: the host's writes failed: %+v", l.h, res)
	require.Positive(t, res.Acked)
	return res
}

// probeWrite connects host0 to a afresh (multipath over both controllers)
// and writes one block outside the ring loads use, again and again until
// that works, then reads it back. It returns when the first write
// completed and what failed before.
func (c *cluster) probeWrite(t testing.TB, ctx context.Context, a *array) (time.Time, []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	var errs []error
	for {
		done, err := c.probeOnce(ctx, a)
		if err == nil {
			return done, errs
		}
		errs = append(errs, err)
		select {
		case <-ctx.Done():
			t.Fatalf("no probe write within %v: %v", ioTimeout, errors.Join(errs...))
		case <-time.After(50 * time.Millisecond): // the next attempt, as a host's retry would
		}
	}
}

func (c *cluster) probeOnce(ctx context.Context, a *array) (time.Time, error) {
	dev, bs, blocks, err := c.open(ctx, "host0", a.nqn(), hostNQN, []string{cnPaths["cn0"], cnPaths["cn1"]})
	if err != nil {
		return time.Time{}, err
	}
	defer func() { _ = dev.Close() }()
	if blocks <= seqBlocks {
		return time.Time{}, fmt.Errorf("no room for a probe outside the ring: %d blocks", blocks)
	}
	b := make([]byte, bs)
	_, _ = rand.Read(b)
	off := int64(seqBlocks) * int64(bs)
	if err := dev.WriteAt(ctx, 1, b, off); err != nil {
		return time.Time{}, fmt.Errorf("probe write: %w", err)
	}
	done := time.Now()
	got := make([]byte, len(b))
	if err := dev.ReadAt(ctx, 1, got, off); err != nil {
		return time.Time{}, fmt.Errorf("probe read: %w", err)
	}
	if !bytes.Equal(b, got) {
		return time.Time{}, errors.New("the probe block reads back different")
	}
	return done, nil
}
