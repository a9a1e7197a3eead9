package spdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// response is one JSON-RPC reply as SPDK sends it.
type response struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *wireError      `json:"error"`
}

type wireError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// conn is one connection to SPDK and the calls in flight on it. Requests are written back to
// back; a single reader goroutine matches replies to callers by id. Once broken (read error,
// undecodable bytes, partial write, Close) a conn is never used again: every waiting caller
// sees done closed and the Client dials a fresh one for the next call.
type conn struct {
	nc  net.Conn
	log hclog.Logger

	// wsem serialises writes so that concurrent requests are never interleaved on the wire. It
	// is a channel rather than a mutex so that a caller queued behind a write blocked on a hung
	// SPDK still gives up when its context ends.
	wsem chan struct{}

	mu      sync.Mutex
	pending map[uint64]chan response
	err     error

	done     chan struct{} // closed when the conn breaks
	readDone chan struct{} // closed when readLoop has returned
}

func newConn(nc net.Conn, log hclog.Logger) *conn {
	return &conn{
		nc:       nc,
		log:      log,
		pending:  make(map[uint64]chan response),
		wsem:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
}

// register reserves a reply slot for id. It fails if the conn is already broken.
func (cn *conn) register(id uint64) (chan response, error) {
	ch := make(chan response, 1)
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.err != nil {
		return nil, cn.err
	}
	cn.pending[id] = ch
	return ch, nil
}

// forget drops the reply slot of an abandoned call; a late reply is then discarded.
func (cn *conn) forget(id uint64) {
	cn.mu.Lock()
	delete(cn.pending, id)
	cn.mu.Unlock()
}

// broken reports whether the conn has failed.
func (cn *conn) broken() bool {
	select {
	case <-cn.done:
		return true
	default:
		return false
	}
}

// failure returns the error that broke the conn.
func (cn *conn) failure() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// fail breaks the conn once: it records why, wakes every waiting caller and closes the socket.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = err
	cn.pending = nil
	// done closes with err set, under the lock: a caller that register
	// refused (err set) then finds the conn broken and dials a fresh one.
	close(cn.done)
	cn.mu.Unlock()
	cn.log.Debug("connection broken", "error", err)
	_ = cn.nc.Close()
}

// write sends one complete request, giving up when ctx ends. Any write error breaks the conn:
// after a partial write the framing can no longer be trusted. SPDK cannot execute a request it
// did not receive whole, so an error from write always means the request was not executed.
func (cn *conn) write(ctx context.Context, buf []byte) error {
	select {
	case cn.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-cn.done:
		return cn.failure()
	}
	defer func() { <-cn.wsem }()
	if cn.broken() {
		return cn.failure()
	}
	var stop func() bool
	var fired chan struct{}
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			_ = cn.nc.SetWriteDeadline(time.Unix(1, 0))
			close(fired)
		})
	}
	_, err := cn.nc.Write(buf)
	if stop != nil && !stop() {
		// ctx ended during or right after the write: undo the deadline it set.
		<-fired
		_ = cn.nc.SetWriteDeadline(time.Time{})
		if err != nil {
			err = fmt.Errorf("%w: write interrupted: %w", ErrConnection, ctx.Err())
		}
	}
	if err != nil {
		if !errors.Is(err, ErrConnection) {
			err = fmt.Errorf("%w: write: %w", ErrConnection, err)
		}
		cn.fail(err)
		return err
	}
	return nil
}

// readLoop decodes replies from r until it fails, then breaks the conn. It owns the read side.
func (cn *conn) readLoop(r io.Reader) {
	defer close(cn.readDone)
	rr := newReplyReader(r)
	for {
		resp, err := rr.next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				cn.fail(fmt.Errorf("%w: connection closed by SPDK", ErrConnection))
			} else {
				cn.fail(fmt.Errorf("%w: reading reply: %w", ErrConnection, err))
			}
			return
		}
		cn.deliver(resp)
	}
}

// deliver hands a reply to the caller waiting for its id. Replies with an id we are not
// waiting for (abandoned calls, or a non-integer id we never send) are dropped: they cannot
// be matched to any caller and do not disturb the framing.
func (cn *conn) deliver(resp response) {
	id, err := strconv.ParseUint(string(bytes.TrimSpace(resp.ID)), 10, 64)
	if err != nil {
		cn.log.Debug("discarding reply without a usable id", "id", string(resp.ID))
		return
	}
	cn.mu.Lock()
	ch, ok := cn.pending[id]
	if ok {
		delete(cn.pending, id)
	}
	cn.mu.Unlock()
	if !ok {
		cn.log.Debug("discarding reply for unknown id", "id", id)
		return
	}
	ch <- resp // buffered: never blocks
}
