package fabric

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// ANA states as hosts see them (Linux nvme and SPDK spell them alike).
const (
	ANAOptimized    = "optimized"
	ANANonOptimized = "non_optimized"
)

// MultipathOptions tunes a Multipath host. Zero values take the defaults.
type MultipathOptions struct {
	// Dial is used for every path connection.
	Dial DialOptions
	// ConnectTimeout bounds one connection attempt to one path.
	ConnectTimeout time.Duration
	// RetryInterval is the pause after every path failed an I/O, before
	// the next round (Linux queues I/O while no path works, up to its
	// ctrl_loss_tmo; here the caller's context is that limit).
	RetryInterval time.Duration
	// Logger is silent when nil.
	Logger hclog.Logger
}

// DefaultMultipathOptions connects within 2 s and retries every 50 ms.
func DefaultMultipathOptions() MultipathOptions {
	return MultipathOptions{Dial: DefaultDialOptions(), ConnectTimeout: 2 * time.Second,
		RetryInterval: 50 * time.Millisecond}
}

// Multipath is a host's view of one subsystem reached over several paths,
// like Linux native NVMe multipath: I/O goes to an ANA-optimized path when
// one is connected, otherwise to any other; an I/O that fails on a path
// drops that path's connection (it is re-established on demand) and is
// retried on the next path, round after round, until it succeeds or the
// caller's context ends; only an invalid request (ErrInvalid, e.g. out of
// range: ErrInvalid or blockdev.ErrOutOfRange) fails at once. Writes of whole blocks are idempotent, so a retry
// after an uncertain failure is safe. It is safe for concurrent use.
type Multipath struct {
	subNQN, hostNQN string
	paths           []TransportID
	o               MultipathOptions
	log             hclog.Logger

	mu     sync.Mutex
	conns  []*Conn // by path index; nil when not connected
	closed bool
	stats  MultipathStats
}

// MultipathStats counts what a Multipath did.
type MultipathStats struct {
	// IOs is how many I/Os completed, Retries how many attempts failed
	// before one completed or the context ended.
	IOs, Retries uint64
	// Connects counts successful (re)connections of any path.
	Connects uint64
}

// PathState is one path as a host would list it (nvme list-subsys).
type PathState struct {
	Addr      TransportID
	Connected bool
	ANAState  string // empty when not connected
}

// ErrNoPath is returned when a Multipath is given no usable path.
var ErrNoPath = errors.New("fabric: no path")

// NewMultipath returns a host for subNQN over paths, connecting as hostNQN.
// It connects lazily; call Connect to connect every path now.
func NewMultipath(paths []TransportID, subNQN, hostNQN string, o MultipathOptions) (*Multipath, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: none given for %s", ErrNoPath, subNQN)
	}
	for _, p := range paths {
		if !p.valid() {
			return nil, fmt.Errorf("%w: path %+v", ErrInvalid, p)
		}
	}
	if subNQN == "" || hostNQN == "" {
		return nil, fmt.Errorf("%w: empty subsystem or host NQN", ErrInvalid)
	}
	def := DefaultMultipathOptions()
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = def.ConnectTimeout
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = def.RetryInterval
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	o.Dial.Logger = o.Logger
	return &Multipath{subNQN: subNQN, hostNQN: hostNQN, paths: append([]TransportID(nil), paths...), o: o,
		log: o.Logger.Named("multipath").With("subnqn", subNQN), conns: make([]*Conn, len(paths))}, nil
}

// Connect tries every path that is not connected once and returns the
// joined errors of those that failed (nil if all are connected).
func (m *Multipath) Connect(ctx context.Context) error {
	var errs []error
	for i := range m.paths {
		if _, err := m.conn(ctx, i); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// conn returns path i's connection, dialling it if needed.
func (m *Multipath) conn(ctx context.Context, i int) (*Conn, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	c := m.conns[i]
	m.mu.Unlock()
	if c != nil {
		select {
		case <-c.Done():
			m.drop(i, c)
		default:
			return c, nil
		}
	}
	dctx, cancel := context.WithTimeout(ctx, m.o.ConnectTimeout)
	defer cancel()
	c, err := DialWith(dctx, m.paths[i], m.subNQN, m.hostNQN, m.o.Dial)
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", m.paths[i].key(), err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.conns[i] != nil {
		_ = c.Close()
		if m.closed {
			return nil, ErrClosed
		}
		return m.conns[i], nil
	}
	m.conns[i] = c
	m.stats.Connects++
	m.log.Debug("path connected", "path", m.paths[i].key(), "ana_state", c.Info().ANAState)
	return c, nil
}

// drop forgets path i's connection c (if it is still the current one).
func (m *Multipath) drop(i int, c *Conn) {
	m.mu.Lock()
	if m.conns[i] == c {
		m.conns[i] = nil
	}
	m.mu.Unlock()
	_ = c.Close()
}

// order returns the path indexes to try: connected optimized paths first,
// then other connected paths, then the unconnected ones.
func (m *Multipath) order() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var opt, other, down []int
	for i, c := range m.conns {
		switch {
		case c == nil:
			down = append(down, i)
		case c.Info().ANAState == ANAOptimized:
			opt = append(opt, i)
		default:
			other = append(other, i)
		}
	}
	return append(append(opt, other...), down...)
}

// do runs io on some path until it succeeds or ctx ends.
func (m *Multipath) do(ctx context.Context, io func(c *Conn) error) error {
	var last error
	for {
		for _, i := range m.order() {
			c, err := m.conn(ctx, i)
			if errors.Is(err, ErrClosed) {
				return err
			}
			if err == nil {
				if err = io(c); err == nil {
					m.mu.Lock()
					m.stats.IOs++
					m.mu.Unlock()
					return nil
				}
				if errors.Is(err, ErrInvalid) || errors.Is(err, blockdev.ErrOutOfRange) {
					return err // the request itself is wrong (e.g. out of range)
				}
				// A failed I/O may be a lost path, a namespace swapped
				// under the connection or a target that proxies to a dead
				// primary: reconnect before using this path again.
				m.drop(i, c)
			}
			last = err
			m.mu.Lock()
			m.stats.Retries++
			m.mu.Unlock()
			if ctx.Err() != nil {
				return fmt.Errorf("fabric: multipath %s: %w (last error: %w)", m.subNQN, ctx.Err(), last)
			}
		}
		t := time.NewTimer(m.o.RetryInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("fabric: multipath %s: %w (last error: %w)", m.subNQN, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// ReadAt reads len(p) bytes of namespace nsid at off through some path.
func (m *Multipath) ReadAt(ctx context.Context, nsid uint32, p []byte, off int64) error {
	return m.do(ctx, func(c *Conn) error { _, err := c.ReadAt(nsid, p, off); return err })
}

// WriteAt writes p to namespace nsid at off through some path.
func (m *Multipath) WriteAt(ctx context.Context, nsid uint32, p []byte, off int64) error {
	return m.do(ctx, func(c *Conn) error { _, err := c.WriteAt(nsid, p, off); return err })
}

// Namespace returns namespace nsid's geometry from a connected path.
func (m *Multipath) Namespace(ctx context.Context, nsid uint32) (NamespaceInfo, error) {
	var ni NamespaceInfo
	err := m.do(ctx, func(c *Conn) error {
		var ok bool
		if ni, ok = c.Info().Namespace(nsid); !ok {
			return fmt.Errorf("%w: nsid %d", ErrNoNamespace, nsid)
		}
		return nil
	})
	return ni, err
}

// Paths lists every path with its state.
func (m *Multipath) Paths() []PathState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PathState, len(m.paths))
	for i, p := range m.paths {
		out[i] = PathState{Addr: p}
		if c := m.conns[i]; c != nil && c.Err() == nil {
			out[i].Connected, out[i].ANAState = true, c.Info().ANAState
		}
	}
	return out
}

// Stats returns the counters so far.
func (m *Multipath) Stats() MultipathStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Close drops every path; it is idempotent.
func (m *Multipath) Close() error {
	m.mu.Lock()
	m.closed = true
	conns := m.conns
	m.conns = make([]*Conn, len(m.paths))
	m.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
	return nil
}
