package rpcmeter

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk"
)

// upstream is a JSON-RPC server that hands every request it reads to the
// test, which answers it when it likes.
type upstream struct {
	reqs chan req
}

type req struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	conn   net.Conn
}

func (r req) answer(t *testing.T) {
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": r.ID, "result": []any{}})
	require.NoError(t, err)
	_, err = r.conn.Write(b)
	require.NoError(t, err)
}

func newUpstream(t *testing.T, sock string) *upstream {
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	u := &upstream{reqs: make(chan req, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			go func() {
				dec := json.NewDecoder(c)
				for {
					var r req
					if dec.Decode(&r) != nil {
						return
					}
					r.conn = c
					u.reqs <- r
				}
			}()
		}
	}()
	return u
}

func setup(t *testing.T, serial bool) (*upstream, *Proxy) {
	dir, err := os.MkdirTemp("", "rpcmeter")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	u := newUpstream(t, filepath.Join(dir, "up.sock"))
	p, err := Start(filepath.Join(dir, "meter.sock"), filepath.Join(dir, "up.sock"), serial)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return u, p
}

// call runs one bdev_get_bdevs through the proxy on a connection of its own.
func call(t *testing.T, p *Proxy, method string) <-chan error {
	done := make(chan error, 1)
	c, err := spdk.Dial(context.Background(), p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	go func() { done <- c.Call(context.Background(), method, nil, nil) }()
	return done
}

func TestSerialForwardsOneAtATime(t *testing.T) {
	u, p := setup(t, true)
	first := call(t, p, "bdev_get_bdevs")
	r1 := <-u.reqs
	second := call(t, p, "nvmf_get_subsystems")
	// Both counted; the second waits at the proxy until the first is answered.
	require.Eventually(t, func() bool { return p.Total() == 2 }, 10*time.Second, time.Millisecond)
	select {
	case r := <-u.reqs:
		t.Fatalf("%s reached the target while %s was unanswered", r.Method, r1.Method)
	default:
	}
	r1.answer(t)
	require.NoError(t, <-first)
	r2 := <-u.reqs
	r2.answer(t)
	require.NoError(t, <-second)
	require.Equal(t, map[string]int{r1.Method: 1, r2.Method: 1}, p.Counts())
	require.Equal(t, 1, p.Stats()["bdev_get_bdevs"].Count)
	p.Reset()
	require.Zero(t, p.Total())
}

func TestPipelinedForwardsAtOnce(t *testing.T) {
	u, p := setup(t, false)
	first := call(t, p, "bdev_get_bdevs")
	second := call(t, p, "bdev_get_bdevs")
	r1, r2 := <-u.reqs, <-u.reqs // both reach the target before any answer
	r2.answer(t)
	r1.answer(t)
	require.NoError(t, <-first)
	require.NoError(t, <-second)
	require.Equal(t, map[string]int{"bdev_get_bdevs": 2}, p.Counts())
	require.Eventually(t, func() bool { return p.Stats()["bdev_get_bdevs"].Count == 2 }, 10*time.Second, time.Millisecond)
}
