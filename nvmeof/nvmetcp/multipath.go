package nvmetcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// MultipathOptions tunes a Multipath. Zero values take the defaults.
type MultipathOptions struct {
	// Options are used for every path's Controller (HostNQN is required).
	Options
	// ConnectTimeout bounds one connection attempt to one path.
	ConnectTimeout time.Duration
	// RetryInterval is the pause after a round in which every path failed
	// an I/O, before the next round.
	RetryInterval time.Duration
	// ReconnectDelay is how long a path whose connection attempt failed
	// waits before the next attempt; it doubles with every further failure
	// up to MaxReconnectDelay, and resets when a connection succeeds.
	ReconnectDelay    time.Duration
	MaxReconnectDelay time.Duration
}

// Multipath defaults.
const (
	DefaultConnectTimeout    = 5 * time.Second
	DefaultRetryInterval     = 50 * time.Millisecond
	DefaultReconnectDelay    = 100 * time.Millisecond
	DefaultMaxReconnectDelay = 2 * time.Second
)

// Multipath is a host's view of one subsystem reached through several
// controllers (paths), like Linux native NVMe multipath, except that it
// retries instead of failing an I/O:
//
//   - An I/O goes to a connected path whose ANA state for the namespace is
//     optimized; if there is none, to a path not connected yet (connected
//     on demand), then to a non-optimized one (while unconnected paths are
//     connected in the background), then to any other.
//   - Paths are connected on demand; a path whose connection attempt
//     failed is retried after ReconnectDelay, doubling to
//     MaxReconnectDelay.
//   - A path's ANA states are read when it connects, on every ANA change
//     notice from its controller, and after every failed I/O on it.
//   - An I/O that fails on a path (transport error, path error, any other
//     status) is retried on the next path, round after round with
//     RetryInterval between rounds, until it succeeds or ctx ends; so is
//     one on a path that does not have the namespace (for a moment, during
//     a role change of its controller). An invalid request (ErrInvalid:
//     misaligned, out of range) fails at once.
//
// Retrying is safe for reads and for writes of whole blocks, which are
// idempotent. One caveat, as with any multipath host: a write whose path
// failed may still be executed late by that controller if it had already
// passed it to its storage, after its retry succeeded elsewhere.
//
// It is safe for concurrent use.
type Multipath struct {
	subNQN string
	o      MultipathOptions
	log    *slog.Logger
	stop   chan struct{}  // closed by Close
	wg     sync.WaitGroup // background connects

	mu     sync.Mutex
	paths  []*path
	closed bool
	stats  MultipathStats
}

type path struct {
	addr       string
	ctrl       *Controller   // nil when not connected
	connecting chan struct{} // non-nil while a connection attempt runs; closed when it ends
	lastErr    error
	failures   int // consecutive failed connection attempts
	nextTry    time.Time
	ios        uint64
}

// MultipathStats counts what a Multipath did.
type MultipathStats struct {
	IOs             uint64 // I/Os (and Namespace calls) that succeeded
	Retries         uint64 // attempts that failed on one path
	Connects        uint64 // successful path connections
	ConnectFailures uint64 // failed path connection attempts
}

// PathState is one path as `nvme list-subsys` would show it.
type PathState struct {
	Addr      string
	Connected bool
	CntlID    uint16 // when connected
	// ANAState is the state of the controller's first active namespace
	// (the only one of a VDA export); ANAStates has every namespace's.
	ANAState  ANAState
	ANAStates map[uint32]ANAState
	IOs       uint64 // I/Os that succeeded through this path
	LastErr   error  // the last failure seen on this path, if any
}

// NewMultipath returns a host for subsystem subNQN over paths (host:port
// each). It connects lazily; call Connect to connect every path now.
func NewMultipath(paths []string, subNQN string, o MultipathOptions) (*Multipath, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: none given for %s", ErrNoPath, subNQN)
	}
	if err := validNQN("subsystem", subNQN); err != nil {
		return nil, err
	}
	opts, err := o.Options.withDefaults()
	if err != nil {
		return nil, err
	}
	o.Options = opts
	if o.ConnectTimeout < 0 || o.RetryInterval < 0 || o.ReconnectDelay < 0 || o.MaxReconnectDelay < 0 {
		return nil, fmt.Errorf("%w: negative multipath timing", ErrInvalid)
	}
	o.ConnectTimeout = cmp0(o.ConnectTimeout, DefaultConnectTimeout)
	o.RetryInterval = cmp0(o.RetryInterval, DefaultRetryInterval)
	o.ReconnectDelay = cmp0(o.ReconnectDelay, DefaultReconnectDelay)
	o.MaxReconnectDelay = max(cmp0(o.MaxReconnectDelay, DefaultMaxReconnectDelay), o.ReconnectDelay)
	m := &Multipath{subNQN: subNQN, o: o, log: o.Logger.With("subnqn", subNQN), stop: make(chan struct{})}
	seen := map[string]bool{}
	for _, a := range paths {
		if err := validAddr(a); err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, fmt.Errorf("%w: path %s given twice", ErrInvalid, a)
		}
		seen[a] = true
		m.paths = append(m.paths, &path{addr: a})
	}
	return m, nil
}

func cmp0(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// Connect tries once to connect every path that is not connected (and not
// waiting out its reconnect delay), and returns the joined errors of those
// that failed.
func (m *Multipath) Connect(ctx context.Context) error {
	var errs []error
	for i := range m.paths {
		if _, err := m.controller(ctx, i); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReadAt reads len(p) bytes of namespace nsid at off through some path.
func (m *Multipath) ReadAt(ctx context.Context, nsid uint32, p []byte, off int64) error {
	return m.do(ctx, nsid, false, func(c *Controller) error { return c.ReadAt(ctx, nsid, p, off) })
}

// WriteAt writes p to namespace nsid at off through some path.
func (m *Multipath) WriteAt(ctx context.Context, nsid uint32, p []byte, off int64) error {
	return m.do(ctx, nsid, false, func(c *Controller) error { return c.WriteAt(ctx, nsid, p, off) })
}

// Namespace returns namespace nsid as a connected path reports it.
func (m *Multipath) Namespace(ctx context.Context, nsid uint32) (NamespaceInfo, error) {
	var ni NamespaceInfo
	err := m.do(ctx, nsid, true, func(c *Controller) error {
		var err error
		ni, err = c.Namespace(ctx, nsid)
		return err
	})
	return ni, err
}

// do runs io on some path until it succeeds, fails as invalid, or ctx ends.
// A namespace that no answering path has fails a lookup at once; I/O keeps
// retrying, as Linux queues it while a path reconnects: during a
// controller's role change its path lacks the namespace for a moment.
func (m *Multipath) do(ctx context.Context, nsid uint32, lookup bool, io func(*Controller) error) error {
	var last error
	for {
		try, background := m.plan(nsid)
		for _, i := range background {
			m.connectBackground(i)
		}
		answered, noNS := 0, 0
		for _, i := range try {
			c, err := m.controller(ctx, i)
			if err == nil {
				if err = io(c); err == nil {
					m.mu.Lock()
					m.stats.IOs++
					m.paths[i].ios++
					m.mu.Unlock()
					return nil
				}
			}
			switch {
			case m.isClosed():
				return fmt.Errorf("nvmetcp: multipath %s: %w", m.subNQN, ErrClosed)
			case ctx.Err() != nil:
				return m.ctxErr(ctx, err)
			case c != nil && errors.Is(err, ErrInvalid): // the request, not the path
				return err
			}
			if c != nil {
				answered++
				if errors.Is(err, ErrNoNamespace) {
					noNS++
				}
				m.pathFailed(ctx, i, c, err)
			}
			last = err
			m.mu.Lock()
			m.stats.Retries++
			m.mu.Unlock()
		}
		if lookup && answered > 0 && noNS == answered {
			return fmt.Errorf("nvmetcp: multipath %s: %w", m.subNQN, last)
		}
		t := time.NewTimer(m.o.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return m.ctxErr(ctx, last)
		case <-m.stop:
			t.Stop()
			return fmt.Errorf("nvmetcp: multipath %s: %w", m.subNQN, ErrClosed)
		case <-t.C:
		}
	}
}

func (m *Multipath) ctxErr(ctx context.Context, last error) error {
	if last == nil {
		return fmt.Errorf("nvmetcp: multipath %s: %w", m.subNQN, ctx.Err())
	}
	return fmt.Errorf("nvmetcp: multipath %s: %w (last error: %w)", m.subNQN, ctx.Err(), last)
}

func (m *Multipath) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// plan orders the paths to try for nsid: connected optimized, then (only
// if no path is usable) unconnected ones, then connected non-optimized,
// then the rest. When no optimized path is connected but a non-optimized
// one is, the unconnected paths are returned to be connected in the
// background instead.
func (m *Multipath) plan(nsid uint32) (try, background []int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var opt, nonopt, down, other []int
	for i, p := range m.paths {
		switch c := p.ctrl; {
		case c == nil || c.Err() != nil:
			if p.connecting == nil && !now.Before(p.nextTry) {
				down = append(down, i)
			}
		case c.ANAState(nsid) == ANAOptimized:
			opt = append(opt, i)
		case c.ANAState(nsid) == ANANonOptimized:
			nonopt = append(nonopt, i)
		default:
			other = append(other, i)
		}
	}
	if len(opt) == 0 && len(nonopt) > 0 {
		down, background = nil, down
	}
	try = append(append(append(opt, down...), nonopt...), other...)
	return try, background
}

// pathFailed handles an I/O that failed on path i's controller c: a dead
// controller is dropped (reconnected on demand), a living one has its ANA
// states read again.
func (m *Multipath) pathFailed(ctx context.Context, i int, c *Controller, err error) {
	if c.Err() == nil && !IsTransportError(err) {
		rctx, cancel := context.WithTimeout(ctx, m.o.CommandTimeout)
		if rerr := c.RefreshANA(rctx); rerr != nil && c.Err() == nil && ctx.Err() == nil {
			m.log.Debug("nvmetcp path ANA refresh failed", "path", m.paths[i].addr, "err", rerr)
		}
		cancel()
	}
	m.mu.Lock()
	p := m.paths[i]
	p.lastErr = err
	drop := p.ctrl == c && c.Err() != nil
	if drop {
		p.ctrl = nil
	}
	m.mu.Unlock()
	if drop {
		m.log.Debug("nvmetcp path lost", "path", p.addr, "err", c.Err())
		_ = c.Close()
	}
}

// controller returns path i's controller, connecting it (within
// ConnectTimeout) if it is not connected and not waiting out its delay.
func (m *Multipath) controller(ctx context.Context, i int) (*Controller, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		p := m.paths[i]
		if c := p.ctrl; c != nil {
			if c.Err() == nil {
				m.mu.Unlock()
				return c, nil
			}
			p.ctrl, p.lastErr = nil, c.Err()
			m.mu.Unlock()
			_ = c.Close()
			continue
		}
		if ch := p.connecting; ch != nil {
			m.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if wait := time.Until(p.nextTry); wait > 0 {
			last := p.lastErr
			m.mu.Unlock()
			return nil, fmt.Errorf("path %s: reconnect in %v: %w", p.addr, wait.Round(time.Millisecond), last)
		}
		ch := make(chan struct{})
		p.connecting = ch
		m.mu.Unlock()
		return m.connectPath(ctx, i, ch)
	}
}

// connectBackground starts connecting path i unless it is connected,
// being connected, or waiting out its delay.
func (m *Multipath) connectBackground(i int) {
	m.mu.Lock()
	p := m.paths[i]
	if c := p.ctrl; c != nil && c.Err() != nil { // lost while no I/O used it
		p.ctrl, p.lastErr = nil, c.Err()
		defer func() { _ = c.Close() }()
	}
	if m.closed || p.ctrl != nil || p.connecting != nil || time.Now().Before(p.nextTry) {
		m.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	p.connecting = ch
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-m.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, _ = m.connectPath(ctx, i, ch)
	}()
}

// connectPath connects path i, whose connecting channel is ch.
func (m *Multipath) connectPath(ctx context.Context, i int, ch chan struct{}) (*Controller, error) {
	p := m.paths[i]
	cctx, cancel := context.WithTimeout(ctx, m.o.ConnectTimeout)
	c, err := Connect(cctx, p.addr, m.subNQN, m.o.Options)
	cancel()
	m.mu.Lock()
	p.connecting = nil
	close(ch)
	if err != nil {
		if ctx.Err() == nil { // the attempt failed, not the caller
			p.failures++
			p.lastErr = err
			p.nextTry = time.Now().Add(m.backoff(p.failures))
			m.stats.ConnectFailures++
		}
		m.mu.Unlock()
		return nil, err
	}
	if m.closed {
		m.mu.Unlock()
		_ = c.Close()
		return nil, ErrClosed
	}
	p.ctrl, p.failures, p.nextTry = c, 0, time.Time{}
	m.stats.Connects++
	m.mu.Unlock()
	m.log.Debug("nvmetcp path connected", "path", p.addr, "cntlid", c.Info().CntlID)
	return c, nil
}

func (m *Multipath) backoff(failures int) time.Duration {
	d := m.o.ReconnectDelay
	for n := 1; n < failures && d < m.o.MaxReconnectDelay; n++ {
		d *= 2
	}
	return min(d, m.o.MaxReconnectDelay)
}

// Paths lists every path with its state.
func (m *Multipath) Paths() []PathState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PathState, len(m.paths))
	for i, p := range m.paths {
		ps := PathState{Addr: p.addr, IOs: p.ios, LastErr: p.lastErr}
		if c := p.ctrl; c != nil && c.Err() == nil {
			ps.Connected, ps.CntlID = true, c.Info().CntlID
			ps.ANAStates = map[uint32]ANAState{}
			for j, ni := range c.Namespaces() {
				s := c.ANAState(ni.NSID)
				ps.ANAStates[ni.NSID] = s
				if j == 0 {
					ps.ANAState = s
				}
			}
		}
		out[i] = ps
	}
	return out
}

// Stats returns the counters so far.
func (m *Multipath) Stats() MultipathStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Close disconnects every path, stops background connection attempts and
// waits for them. It is idempotent; I/O in progress fails with ErrClosed.
func (m *Multipath) Close() error {
	m.mu.Lock()
	var ctrls []*Controller
	if !m.closed {
		m.closed = true
		close(m.stop)
		for _, p := range m.paths {
			if p.ctrl != nil {
				ctrls = append(ctrls, p.ctrl)
				p.ctrl = nil
			}
		}
	}
	m.mu.Unlock()
	for _, c := range ctrls {
		_ = c.Close()
	}
	m.wg.Wait()
	return nil
}
