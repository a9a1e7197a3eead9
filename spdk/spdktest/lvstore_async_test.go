package spdktest

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// gatedProxy forwards TCP connections to a target and stops passing bytes
// on while paused: the NVMe/TCP traffic of a host stalls as on a slow
// network, without an error.
type gatedProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	cond   *sync.Cond
	paused bool
}

func newGatedProxy(t *testing.T, target string) *gatedProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &gatedProxy{ln: ln}
	p.cond = sync.NewCond(&p.mu)
	var wg sync.WaitGroup
	var conns []net.Conn
	var connMu sync.Mutex
	closed := false
	track := func(c net.Conn) {
		connMu.Lock()
		defer connMu.Unlock()
		if closed {
			_ = c.Close() // accepted as the test ended: its copies end at once
		}
		conns = append(conns, c)
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			track(c)
			track(up)
			wg.Go(func() { p.copy(up, c) })
			wg.Go(func() { p.copy(c, up) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		p.resume()
		connMu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		connMu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *gatedProxy) port() string {
	_, port, _ := net.SplitHostPort(p.ln.Addr().String())
	return port
}

// copy passes what src sends on to dst, each chunk once the gate is open.
func (p *gatedProxy) copy(dst io.WriteCloser, src io.ReadCloser) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.paused {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *gatedProxy) pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
}

func (p *gatedProxy) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	p.cond.Broadcast()
}

// rawReply is one reply with its id, result and error code (0: none).
type rawReply struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code int `json:"code"`
	} `json:"error"`
}

func (rc *rawConn) rawReply() rawReply {
	rc.t.Helper()
	var r rawReply
	line := rc.line()
	require.NoError(rc.t, json.Unmarshal([]byte(line), &r), line)
	return r
}

// rawReplies reads the next n replies, by ID.
func (rc *rawConn) rawReplies(n int) map[int]rawReply {
	rc.t.Helper()
	got := map[int]rawReply{}
	for range n {
		r := rc.rawReply()
		got[r.ID] = r
	}
	return got
}

// SPDK writes a new lvstore's blobstore in the background
// (spdk_lvs_init, spdk_bs_init): its RPC thread answers other requests
// meanwhile, other stores are created at once, the store's name is taken
// from the start (-17 for a second store of that name) and the store is
// listed, its base claimed, once written. The fake did the write with the
// target locked, so one lvstore on a remote (slow) base held up every
// request of the target, and a controller node created its arrays'
// lvstores one at a time.
func TestLvstoreCreateWritesInTheBackground(t *testing.T) {
	a, ra, proxy := remoteBase(t)
	ra.ok("bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 4096})
	ra.ok("bdev_malloc_create", map[string]any{"name": "m1", "block_size": 4096, "num_blocks": 4096})

	proxy.pause() // the remote base's writes stall
	ra.send(`{"jsonrpc":"2.0","id":1,"method":"bdev_lvol_create_lvstore","params":{"bdev_name":"vbn1","lvs_name":"slow","clear_method":"none"}}` +
		`{"jsonrpc":"2.0","id":2,"method":"bdev_lvol_create_lvstore","params":{"bdev_name":"m0","lvs_name":"fast"}}` +
		`{"jsonrpc":"2.0","id":3,"method":"bdev_lvol_create_lvstore","params":{"bdev_name":"m1","lvs_name":"slow"}}`)
	got := ra.rawReplies(2)
	require.NotContains(t, got, 1, "the stalled store answered before its base was written")
	require.Nil(t, got[2].Error, "a store on a local base is created while another is written")
	require.NotNil(t, got[3].Error, "the name of a store being written is taken")
	require.Equal(t, -17, got[3].Error.Code)
	other := dialRaw(t, a.SockPath()) // the target answers other connections too
	lvs := string(other.ok("bdev_lvol_get_lvstores", nil))
	require.Contains(t, lvs, `"name":"fast"`)
	require.NotContains(t, lvs, `"name":"slow"`, "listed before it is written")
	require.Contains(t, string(other.ok("bdev_get_bdevs", map[string]any{"name": "vbn1"})), `"claimed":false`,
		"claimed before it is written")

	proxy.resume()
	r := ra.rawReply()
	require.Equal(t, 1, r.ID)
	require.Nil(t, r.Error)
	var uuid string
	require.NoError(t, json.Unmarshal(r.Result, &uuid))
	lvs = string(ra.ok("bdev_lvol_get_lvstores", map[string]any{"lvs_name": "slow"}))
	require.Contains(t, lvs, `"uuid":"`+uuid+`"`)
	require.Contains(t, lvs, `"base_bdev":"vbn1"`)
	require.True(t, strings.Contains(string(ra.ok("bdev_get_bdevs", map[string]any{"name": "vbn1"})), `"claimed":true`))
	require.NotNil(t, ra.call("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m1", "lvs_name": "slow"}).Error)
}

// The same for an lvol (spdk_lvol_create): its name is taken at once
// (pending_lvols), and the lvol's bdev is registered once its blob is
// written, while lvols of other stores are created meanwhile.
func TestLvolCreateWritesInTheBackground(t *testing.T) {
	_, ra, proxy := remoteBase(t)
	ra.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "vbn1", "lvs_name": "slow", "clear_method": "none"})
	ra.ok("bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 4096})
	ra.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m0", "lvs_name": "fast"})

	proxy.pause()
	ra.send(`{"jsonrpc":"2.0","id":1,"method":"bdev_lvol_create","params":{"lvs_name":"slow","lvol_name":"v","size_in_mib":8,"thin_provision":true,"clear_method":"none"}}` +
		`{"jsonrpc":"2.0","id":2,"method":"bdev_lvol_create","params":{"lvs_name":"fast","lvol_name":"v","size_in_mib":4}}` +
		`{"jsonrpc":"2.0","id":3,"method":"bdev_lvol_create","params":{"lvs_name":"slow","lvol_name":"v","size_in_mib":4}}` +
		`{"jsonrpc":"2.0","id":4,"method":"bdev_get_bdevs","params":{"name":"fast/v"}}`)
	got := ra.rawReplies(3)
	require.NotContains(t, got, 1, "the stalled lvol answered before its blob was written")
	require.NotNil(t, got[3].Error, "the name of an lvol being created is taken")
	require.Equal(t, -17, got[3].Error.Code)
	require.Nil(t, got[2].Error, "an lvol of another store is created while one is written")
	require.Contains(t, string(ra.ok("bdev_get_bdevs", map[string]any{"name": "fast/v"})), `"aliases":["fast/v"]`)

	proxy.resume()
	r := ra.rawReply()
	require.Equal(t, 1, r.ID)
	require.Nil(t, r.Error)
	var uuid string
	require.NoError(t, json.Unmarshal(r.Result, &uuid))
	require.Contains(t, string(ra.ok("bdev_get_bdevs", map[string]any{"name": "slow/v"})), `"uuid":"`+uuid+`"`)
}

// remoteBase runs a target whose bdev vbn1 is a namespace of another
// target reached through a gatedProxy.
func remoteBase(t *testing.T) (*Server, *rawConn, *gatedProxy) {
	t.Helper()
	const host = "nqn.2016-06.io.vda:fe-1"
	b := NewServer(t)
	rb := dialRaw(t, b.SockPath())
	nqn, port := diskNode(t, b, rb, "b", host)
	proxy := newGatedProxy(t, "127.0.0.1:"+port)
	a := NewServer(t)
	ra := dialRaw(t, a.SockPath())
	require.Equal(t, []string{"vbn1"}, attach(ra, "vb", proxy.port(), nqn, host))
	return a, ra, proxy
}
