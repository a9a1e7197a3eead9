package spdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultDialTimeout bounds one connection attempt when the caller's context has no earlier
// deadline.
const DefaultDialTimeout = 5 * time.Second

// Option configures a Client.
type Option func(*options)

type options struct {
	logger      hclog.Logger
	dialTimeout time.Duration
	callTimeout time.Duration
	observe     func(method string, d time.Duration, err error)
}

// WithLogger sets the logger. Wire traffic is logged at Trace; nothing is logged by default.
func WithLogger(l hclog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithDialTimeout bounds each connection attempt (DefaultDialTimeout if zero or unset).
func WithDialTimeout(d time.Duration) Option {
	return func(o *options) { o.dialTimeout = d }
}

// WithObserver has every call reported to fn when it ends, with its
// duration and error (an *Error for an SPDK error reply): for metrics. fn
// runs on the caller's goroutine and must not block.
func WithObserver(fn func(method string, d time.Duration, err error)) Option {
	return func(o *options) { o.observe = fn }
}

// WithCallTimeout bounds calls whose context has no deadline (by default such a call waits as
// long as its context lives).
func WithCallTimeout(d time.Duration) Option {
	return func(o *options) { o.callTimeout = d }
}

// Client is a JSON-RPC client of one SPDK application. It is safe for concurrent use: every
// call shares one connection, requests are pipelined, and replies are matched by id. A broken
// connection is replaced on the next call. See the package documentation for retry rules.
type Client struct {
	network, addr string
	log           hclog.Logger
	dialTimeout   time.Duration
	callTimeout   time.Duration
	observe       func(method string, d time.Duration, err error)

	nextID atomic.Uint64
	conns  atomic.Uint64 // successful dials, for Conns

	mu      sync.Mutex
	cur     *conn
	dialing chan struct{} // non-nil while one caller dials; closed when it is done
	closed  bool

	capMu   sync.Mutex
	methods map[string]struct{} // rpc_get_methods cache for Supports; reset on reconnect
}

// ParseAddress splits an SPDK RPC address into a network and an address: "host:port" (an
// address containing ':' that does not start with '/' or '.') is TCP, anything else a unix
// socket path.
func ParseAddress(addr string) (network, address string, err error) {
	if addr == "" {
		return "", "", fmt.Errorf("%w: empty address", ErrBadRequest)
	}
	if strings.Contains(addr, ":") && !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, ".") {
		return "tcp", addr, nil
	}
	return "unix", addr, nil
}

// New returns a Client for addr without connecting: the first call dials. Use Dial to fail
// fast when SPDK is not there.
func New(addr string, opts ...Option) (*Client, error) {
	network, address, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	o := options{dialTimeout: DefaultDialTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = hclog.NewNullLogger()
	}
	if o.dialTimeout <= 0 {
		o.dialTimeout = DefaultDialTimeout
	}
	return &Client{
		network:     network,
		addr:        address,
		log:         o.logger.Named("spdk").With("addr", addr),
		dialTimeout: o.dialTimeout,
		callTimeout: o.callTimeout,
		observe:     o.observe,
	}, nil
}

// Dial returns a Client for addr (see ParseAddress) and connects once, so that a wrong address
// or a missing SPDK is reported here. Later connection losses are repaired on the next call.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	c, err := New(addr, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := c.getConn(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Conns returns how many connections the Client has established so far. It grows when a
// broken connection is replaced, for instance after SPDK restarted: a caller that remembers
// the value can tell that the SPDK at the other end may have lost its state since.
func (c *Client) Conns() uint64 { return c.conns.Load() }

// Close closes the connection. Calls in flight fail with ErrClosed (and ErrOutcomeUnknown if
// they change state); later calls fail with ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cur := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cur != nil {
		cur.fail(ErrClosed)
		<-cur.readDone // the socket is closed, so the reader returns promptly
	}
	return nil
}

// getConn returns the live connection, dialing one if needed. Only one caller dials at a time;
// the others wait for it (or for their context).
func (c *Client) getConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if c.cur != nil && !c.cur.broken() {
			cur := c.cur
			c.mu.Unlock()
			return cur, nil
		}
		if wait := c.dialing; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		wait := make(chan struct{})
		c.dialing = wait
		c.mu.Unlock()

		cn, err := c.dial(ctx)

		c.mu.Lock()
		c.dialing = nil
		close(wait)
		if err == nil && c.closed {
			cn.fail(ErrClosed)
			err = ErrClosed
		}
		if err == nil {
			c.cur = cn
			c.conns.Add(1)
		}
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		c.resetCapabilities()
		return cn, nil
	}
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: c.dialTimeout}
	nc, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s %s: %w", ErrConnection, c.network, c.addr, err)
	}
	cn := newConn(nc, c.log)
	go cn.readLoop(nc)
	c.log.Debug("connected")
	return cn, nil
}

// Call invokes method with params (nil for none; otherwise anything encoding/json turns into a
// JSON object) and decodes the result into result (nil to ignore it). SPDK's error replies
// come back as *Error. The context bounds the whole call, including reconnecting.
func (c *Client) Call(ctx context.Context, method string, params, result any) (err error) {
	if c.observe != nil {
		start := time.Now()
		defer func() { c.observe(method, time.Since(start), err) }()
	}
	var raw json.RawMessage
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("%w: %s: encoding params: %w", ErrBadRequest, method, err)
		}
		if string(b) != "null" {
			raw = b
		}
	}
	resp, err := c.call(ctx, method, raw)
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return &Error{Method: method, Code: resp.Error.Code, Message: resp.Error.Message}
	}
	if result == nil {
		// The reader left the result to be checked by whoever decodes it.
		if len(resp.Result) > 0 && !json.Valid(resp.Result) {
			return fmt.Errorf("%w: %s: result is not valid JSON", ErrBadResponse, method)
		}
		return nil
	}
	if len(resp.Result) == 0 {
		return fmt.Errorf("%w: %s: reply has neither result nor error", ErrBadResponse, method)
	}
	if err := decodeResult(resp.Result, result); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadResponse, method, err)
	}
	return nil
}

// call runs one request, retrying once on a fresh connection when that is safe: when the
// request was never sent, or when it is read-only and the connection broke while waiting.
func (c *Client) call(ctx context.Context, method string, params json.RawMessage) (response, error) {
	if err := ctx.Err(); err != nil {
		return response{}, fmt.Errorf("spdk: %s: %w", method, err)
	}
	if _, ok := ctx.Deadline(); !ok && c.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.callTimeout)
		defer cancel()
	}
	start := time.Now()
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		id := c.nextID.Add(1)
		resp, sent, err := c.roundTrip(ctx, id, method, params)
		if c.log.IsTrace() {
			c.log.Trace("rpc", "method", method, "id", id, "attempt", attempt,
				"duration", time.Since(start), "error", err)
		}
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			break
		}
		if !errors.Is(err, ErrConnection) || (sent && !IsReadOnly(method)) {
			break
		}
	}
	return response{}, lastErr
}

// roundTrip sends one request on the current connection and waits for its reply. sent reports
// whether the request may have reached SPDK.
func (c *Client) roundTrip(ctx context.Context, id uint64, method string, params json.RawMessage) (resp response, sent bool, err error) {
	cn, err := c.getConn(ctx)
	if err != nil {
		return response{}, false, fmt.Errorf("spdk: %s: %w", method, err)
	}
	ch, err := cn.register(id)
	if err != nil {
		return response{}, false, fmt.Errorf("spdk: %s: %w", method, err)
	}
	if err := cn.write(ctx, encodeRequest(id, method, params)); err != nil {
		cn.forget(id)
		return response{}, false, fmt.Errorf("spdk: %s: %w", method, err)
	}
	select {
	case resp := <-ch:
		return resp, true, nil
	case <-cn.done:
		select {
		case resp := <-ch: // the reply won the race with the failure
			return resp, true, nil
		default:
		}
		return response{}, true, c.lostErr(method, cn.failure())
	case <-ctx.Done():
		cn.forget(id)
		return response{}, true, c.lostErr(method, ctx.Err())
	}
}

// lostErr describes a call whose request was sent but whose reply will never be seen.
func (c *Client) lostErr(method string, cause error) error {
	if IsReadOnly(method) {
		return fmt.Errorf("spdk: %s: %w", method, cause)
	}
	return fmt.Errorf("spdk: %s: %w: %w", method, ErrOutcomeUnknown, cause)
}

// encodeRequest builds {"jsonrpc":"2.0","method":...,"id":N[,"params":...]}. The id is always
// an integer: SPDK corrupts the framing of replies to requests without one.
func encodeRequest(id uint64, method string, params json.RawMessage) []byte {
	buf := make([]byte, 0, 64+len(method)+len(params))
	buf = append(buf, `{"jsonrpc":"2.0","method":`...)
	buf = appendJSONString(buf, method)
	buf = append(buf, `,"id":`...)
	buf = strconv.AppendUint(buf, id, 10)
	if len(params) > 0 {
		buf = append(buf, `,"params":`...)
		buf = append(buf, params...)
	}
	return append(buf, '}')
}

func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < 0x20 || b == '"' || b == '\\' || b >= 0x80 {
			q, _ := json.Marshal(s) // rare: method names are plain ASCII
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
