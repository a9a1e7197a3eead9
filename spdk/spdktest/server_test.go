package spdktest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rawConn is a test connection that speaks the wire protocol by hand.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, sock string) *rawConn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	_, err := io.WriteString(rc.c, s)
	require.NoError(rc.t, err)
}

// line reads one newline-terminated reply.
func (rc *rawConn) line() string {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := rc.r.ReadString('\n')
	require.NoError(rc.t, err, "partial read %q", s)
	return s
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call sends one request with id 1 and decodes the reply.
func (rc *rawConn) call(method string, params any) reply {
	rc.t.Helper()
	req := map[string]any{"jsonrpc": "2.0", "id": 1, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, err := json.Marshal(req)
	require.NoError(rc.t, err)
	rc.send(string(b))
	var r reply
	require.NoError(rc.t, json.Unmarshal([]byte(rc.line()), &r))
	return r
}

// ok calls method and requires success, returning the raw result.
func (rc *rawConn) ok(method string, params any) json.RawMessage {
	rc.t.Helper()
	r := rc.call(method, params)
	require.Nil(rc.t, r.Error, "%s: %+v", method, r.Error)
	return r.Result
}

// fails calls method and requires the error code.
func (rc *rawConn) fails(code int, method string, params any) string {
	rc.t.Helper()
	r := rc.call(method, params)
	require.NotNil(rc.t, r.Error, "%s succeeded: %s", method, r.Result)
	require.Equal(rc.t, code, r.Error.Code, "%s: %s", method, r.Error.Message)
	return r.Error.Message
}

func TestWireFramingAndIDs(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())

	// Two requests in one write are answered in order, each as one line.
	rc.send(`{"jsonrpc":"2.0","method":"spdk_get_version","id":"a"}{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":2.5}`)
	require.True(t, strings.HasPrefix(rc.line(), `{"jsonrpc":"2.0","id":"a","result":{"version":"SPDK v24.01`))
	require.Equal(t, "{\"jsonrpc\":\"2.0\",\"id\":2.5,\"result\":[]}\n", rc.line())

	// Protocol errors.
	rc.send(`{"jsonrpc":"1.0","method":"spdk_get_version","id":3}`)
	require.Equal(t, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"Invalid request\"}}\n", rc.line())
	rc.send(`{"jsonrpc":"2.0","method":"spdk_get_version","params":3,"id":4}`)
	require.Equal(t, "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32600,\"message\":\"Invalid request\"}}\n", rc.line())
	rc.send(`"just a string"`)
	require.Contains(t, rc.line(), `"code":-32600`)
	rc.send(`{"method":"nope","id":5}`)
	require.Equal(t, "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}\n", rc.line())

	// A request without id still runs; its success reply is truncated.
	rc.send(`{"jsonrpc":"2.0","method":"bdev_malloc_create","params":{"name":"m","block_size":512,"num_blocks":8}}`)
	buf := make([]byte, len(`{"jsonrpc":"2.0","id":null,"result":"m"`))
	_, err := io.ReadFull(rc.r, buf)
	require.NoError(t, err)
	require.Equal(t, `{"jsonrpc":"2.0","id":null,"result":"m"`, string(buf))

	// Unparseable input closes the connection without a reply.
	other := dialRaw(t, srv.SockPath())
	other.send("this is not json\n")
	_ = other.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = other.r.ReadByte()
	require.ErrorIs(t, err, io.EOF)
}

func TestPhasesWithWaitForRPC(t *testing.T) {
	srv := NewServer(t, WithWaitForRPC())
	rc := dialRaw(t, srv.SockPath())
	require.Equal(t, msgAfterInit, rc.fails(-1, "bdev_get_bdevs", nil))
	// framework_wait_init blocks until another connection starts the framework.
	waited := make(chan reply, 1)
	waiter := dialRaw(t, srv.SockPath())
	go func() { waited <- waiter.call("framework_wait_init", nil) }()
	var pre []string
	require.NoError(t, json.Unmarshal(rc.ok("rpc_get_methods", map[string]any{"current": true}), &pre))
	require.Equal(t, startupMethods, pre)
	rc.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
	require.Eventually(t, func() bool { return srv.RPCCount("framework_wait_init") == 1 }, 5*time.Second, time.Millisecond)
	select {
	case r := <-waited:
		t.Fatalf("framework_wait_init returned before init: %+v", r)
	default:
	}
	rc.ok("framework_start_init", nil)
	require.Nil(t, (<-waited).Error)
	require.Equal(t, msgBeforeInit, rc.fails(-1, "framework_start_init", nil))
	require.Equal(t, msgBeforeInit, rc.fails(-1, "bdev_set_options", map[string]any{}))
	var cur []string
	require.NoError(t, json.Unmarshal(rc.ok("rpc_get_methods", map[string]any{"current": true}), &cur))
	require.Contains(t, cur, "bdev_get_bdevs")
	require.NotContains(t, cur, "framework_start_init")
	rc.ok("framework_wait_init", nil)
	rc.ok("bdev_get_bdevs", nil)
}

func TestStrictDecoding(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	cases := []struct {
		method string
		params any
	}{
		{"bdev_get_bdevs", map[string]any{"name": "x", "bogus": 1}},
		{"bdev_get_bdevs", map[string]any{"Name": "x"}},
		{"bdev_get_bdevs", []any{"x"}},
		{"bdev_get_bdevs", map[string]any{"name": 5}},
		{"bdev_get_bdevs", map[string]any{"name": nil}},
		{"bdev_malloc_create", map[string]any{"block_size": 512}},
		{"bdev_malloc_create", map[string]any{"block_size": 512, "num_blocks": -1}},
		{"bdev_malloc_create", map[string]any{"block_size": 512, "num_blocks": 1.5}},
		{"bdev_malloc_create", nil},
	}
	for _, c := range cases {
		require.Equal(t, "spdk_json_decode_object failed", rc.fails(-32603, c.method, c.params), "%s %v", c.method, c.params)
	}
	// The nvmf handlers answer a decoding failure with -32602.
	require.Equal(t, "Invalid parameters", rc.fails(-32602, "nvmf_subsystem_add_ns",
		map[string]any{"nqn": "nqn.2016-06.io.x:a", "namespace": map[string]any{"bdev": "m"}}))
	rc.fails(-32700, "bdev_raid_create", map[string]any{"name": "r", "raid_level": "raid0", "base_bdevs": "a b", "strip_size_kb": 64})
	rc.fails(-32700, "bdev_raid_create", map[string]any{"name": "r", "raid_level": "raid7", "base_bdevs": []string{"a"}, "strip_size_kb": 64})
}

func TestNamespaceAndClaims(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	rc.ok("bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 32768, "uuid": "11111111-2222-3333-4444-555555555555"})
	rc.fails(-17, "bdev_malloc_create", map[string]any{"name": "11111111-2222-3333-4444-555555555555", "block_size": 512, "num_blocks": 8})
	lvs := rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m0", "lvs_name": "lvs0", "clear_method": "none"})
	require.Len(t, strings.Trim(string(lvs), `"`), 36)
	rc.fails(-1, "bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m0", "lvs_name": "other"})
	var uuid string
	require.NoError(t, json.Unmarshal(rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "lvs0", "lvol_name": "lv", "size": 80<<20 + 1}), &uuid))
	rc.fails(-17, "bdev_malloc_create", map[string]any{"name": "lvs0/lv", "block_size": 512, "num_blocks": 8})
	var bdevs []bdevJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_get_bdevs", map[string]any{"name": "lvs0/lv"}), &bdevs))
	require.Equal(t, uuid, bdevs[0].Name)
	require.Equal(t, uint64(84<<20/4096), bdevs[0].NumBlocks, "rounded up to whole 4 MiB clusters")
	var m0 []bdevJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_get_bdevs", map[string]any{"name": "m0"}), &m0))
	require.Equal(t, claimReadManyWriteOne, m0[0].ClaimType)

	// Rename moves the alias.
	rc.ok("bdev_lvol_rename", map[string]any{"old_name": "lvs0/lv", "new_name": "lv2"})
	rc.fails(-19, "bdev_get_bdevs", map[string]any{"name": "lvs0/lv"})
	rc.ok("bdev_lvol_rename", map[string]any{"old_name": uuid, "new_name": "lv"})
	require.Contains(t, srv.Methods(), "bdev_lvol_rename")

	// A namespace claims the lvol; shrinking it is then refused.
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": "nqn.2016-06.io.vda:s1"})
	require.Equal(t, "1", string(rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": "nqn.2016-06.io.vda:s1", "namespace": map[string]any{"bdev_name": "lvs0/lv"}})))
	require.Equal(t, "Device or resource busy", rc.fails(-32602, "bdev_lvol_resize", map[string]any{"name": uuid, "size_in_mib": 4}))
	rc.fails(-32602, "nvmf_subsystem_add_ns", map[string]any{"nqn": "nqn.2016-06.io.vda:s1", "namespace": map[string]any{"bdev_name": uuid}})
	// Deleting the exported lvol succeeds and the namespace silently goes.
	rc.ok("bdev_lvol_delete", map[string]any{"name": uuid})
	var subs []struct {
		Namespaces []any `json:"namespaces"`
	}
	require.NoError(t, json.Unmarshal(rc.ok("nvmf_get_subsystems", map[string]any{"nqn": "nqn.2016-06.io.vda:s1"}), &subs))
	require.NotNil(t, subs[0].Namespaces)
	require.Empty(t, subs[0].Namespaces)
	// Hot-removing the base removes the lvstore.
	rc.ok("bdev_malloc_delete", map[string]any{"name": "m0"})
	rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"lvs_name": "lvs0"})
}

func TestExamineIsAsynchronous(t *testing.T) {
	srv := NewServer(t, WithExamineDelay(time.Hour))
	rc := dialRaw(t, srv.SockPath())
	dir := t.TempDir()
	path := dir + "/disk.img"
	require.NoError(t, createSparse(path, 64<<20))
	rc.ok("bdev_aio_create", map[string]any{"name": "a0", "filename": path, "block_size": 4096})
	lvsUUID := strings.Trim(string(rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "a0", "lvs_name": "lvs"})), `"`)
	lvUUID := strings.Trim(string(rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "lvs", "lvol_name": "v", "size_in_mib": 8})), `"`)

	// Crash keeps the file; after a restart the lvstore is invisible until
	// bdev_examine, and examine is asynchronous.
	srv.Crash()
	require.NoError(t, srv.Restart(true))
	rc = dialRaw(t, srv.SockPath())
	rc.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
	rc.ok("framework_start_init", nil)
	rc.ok("bdev_aio_create", map[string]any{"name": "a0", "filename": path, "block_size": 4096})
	rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"lvs_name": "lvs"})
	rc.ok("bdev_examine", map[string]any{"name": "a0"})
	rc.fails(-17, "bdev_examine", map[string]any{"name": "a0"})
	rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"lvs_name": "lvs"})
	require.Equal(t, 1, srv.PendingExamines())
	srv.CompleteExamines()
	var got []lvstoreJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_lvol_get_lvstores", map[string]any{"lvs_name": "lvs"}), &got))
	require.Equal(t, lvsUUID, got[0].UUID)
	var lv []bdevJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_get_bdevs", map[string]any{"name": "lvs/v"}), &lv))
	require.Equal(t, lvUUID, lv[0].UUID)
}

func TestExamineDefaultDelayAndWait(t *testing.T) {
	srv := NewServer(t, WithExamineDelay(20*time.Millisecond), WithWaitForRPC())
	rc := dialRaw(t, srv.SockPath())
	rc.ok("framework_start_init", nil)
	rc.fails(-22, "bdev_examine", map[string]any{"name": "m"}) // auto examine is on by default
	require.NoError(t, srv.Restart(true))
	rc = dialRaw(t, srv.SockPath())
	rc.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
	rc.ok("framework_start_init", nil)
	rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 8192})
	rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m", "lvs_name": "l"})
	// Unknown names are remembered and examined when they appear.
	rc.ok("bdev_examine", map[string]any{"name": "later"})
	rc.ok("bdev_malloc_create", map[string]any{"name": "later", "block_size": 4096, "num_blocks": 8})
	rc.ok("bdev_wait_for_examine", nil)
	require.Equal(t, 0, srv.PendingExamines())
}

func TestUnknownNameTimeout(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	require.Equal(t, "Connection timed out", rc.fails(-110, "bdev_get_bdevs", map[string]any{"name": "x", "timeout": 20}))
	// A bdev that appears while waiting is returned.
	done := make(chan reply, 1)
	waiter := dialRaw(t, srv.SockPath())
	go func() { done <- waiter.call("bdev_get_bdevs", map[string]any{"name": "late", "timeout": 10000}) }()
	require.Eventually(t, func() bool { return srv.RPCCount("bdev_get_bdevs") == 2 }, 5*time.Second, time.Millisecond)
	rc.ok("bdev_null_create", map[string]any{"name": "late", "block_size": 512, "num_blocks": 8})
	r := <-done
	require.Nil(t, r.Error)
	require.Contains(t, string(r.Result), `"name":"late"`)

	// An lvol renamed to the awaited alias is found too (SPDK's wait polls
	// the names), and a wait for another name still times out.
	rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 4096})
	rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m", "lvs_name": "lvs"})
	rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "lvs", "lvol_name": "lv", "size_in_mib": 1})
	go func() { done <- waiter.call("bdev_get_bdevs", map[string]any{"name": "lvs/lv2", "timeout": 10000}) }()
	require.Eventually(t, func() bool { return srv.RPCCount("bdev_get_bdevs") == 3 }, 5*time.Second, time.Millisecond)
	rc.ok("bdev_lvol_rename", map[string]any{"old_name": "lvs/lv", "new_name": "lv2"})
	r = <-done
	require.Nil(t, r.Error)
	require.Contains(t, string(r.Result), `"aliases":["lvs/lv2"]`)
	require.Equal(t, "Connection timed out", rc.fails(-110, "bdev_get_bdevs", map[string]any{"name": "lvs/lv", "timeout": 20}))
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{})
	require.True(t, errors.Is(err, ErrConfig))
	_, err = New(Config{SockPath: "/tmp/x.sock", ExamineDelay: -1})
	require.True(t, errors.Is(err, ErrConfig))
}

// Lvstores are found by name and by uuid; a deleted one frees both, and its
// name can be used again.
func TestLvstoreLookupByNameAndUUID(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	rc.ok("bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 4096})
	rc.ok("bdev_malloc_create", map[string]any{"name": "m1", "block_size": 4096, "num_blocks": 4096})
	first := strings.Trim(string(rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m0", "lvs_name": "a"})), `"`)
	rc.fails(-17, "bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m1", "lvs_name": "a"})
	var got []lvstoreJSON
	require.NoError(t, json.Unmarshal(rc.ok("bdev_lvol_get_lvstores", map[string]any{"uuid": first}), &got))
	require.Equal(t, "a", got[0].Name)
	rc.ok("bdev_lvol_delete_lvstore", map[string]any{"lvs_name": "a"})
	rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"uuid": first})
	rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"lvs_name": "a"})
	second := strings.Trim(string(rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m1", "lvs_name": "a"})), `"`)
	require.NoError(t, json.Unmarshal(rc.ok("bdev_lvol_get_lvstores", map[string]any{"lvs_name": "a"}), &got))
	require.Equal(t, second, got[0].UUID)
	require.Equal(t, "m1", got[0].BaseBdev)
	// Hot-removing the base unloads it: both keys go.
	rc.ok("bdev_malloc_delete", map[string]any{"name": "m1"})
	rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"uuid": second})
	require.Equal(t, "[]", string(rc.ok("bdev_lvol_get_lvstores", nil)))
}

// nvmf_set_max_subsystems as SPDK v24.01 answers it (recorded against
// spdk_tgt --wait-for-rpc): the member is optional, 0 may be set again,
// a second limit is refused, and the limit counts the discovery
// subsystem, so 3 leaves room for two.
func TestMaxSubsystems(t *testing.T) {
	srv := NewServer(t, WithWaitForRPC())
	rc := dialRaw(t, srv.SockPath())
	rc.ok("nvmf_set_max_subsystems", map[string]any{})
	rc.ok("nvmf_set_max_subsystems", map[string]any{"max_subsystems": 0})
	rc.ok("nvmf_set_max_subsystems", nil)
	rc.ok("nvmf_set_max_subsystems", map[string]any{"max_subsystems": 3})
	require.Equal(t, "Must not call more than once", rc.fails(codeInternalError, "nvmf_set_max_subsystems", map[string]any{"max_subsystems": 5}))
	rc.ok("framework_start_init", nil)
	require.Equal(t, msgBeforeInit, rc.fails(-1, "nvmf_set_max_subsystems", map[string]any{"max_subsystems": 7}))
	rc.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": "nqn.2016-06.io.spdk:t0"})
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": "nqn.2016-06.io.spdk:t1"})
	require.Equal(t, "Unable to create subsystem nqn.2016-06.io.spdk:t2",
		rc.fails(codeInternalError, "nvmf_create_subsystem", map[string]any{"nqn": "nqn.2016-06.io.spdk:t2"}))
	rc.ok("nvmf_delete_subsystem", map[string]any{"nqn": "nqn.2016-06.io.spdk:t1"})
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": "nqn.2016-06.io.spdk:t2"})

	// Without the call, SPDK's default: 1,024 with discovery.
	def := dialRaw(t, NewServer(t).SockPath())
	def.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	for i := range 1023 {
		def.ok("nvmf_create_subsystem", map[string]any{"nqn": fmt.Sprintf("nqn.2016-06.io.spdk:t%d", i)})
	}
	def.fails(codeInternalError, "nvmf_create_subsystem", map[string]any{"nqn": "nqn.2016-06.io.spdk:t1023"})
}

// writeCounter counts the writes of a connection.
type writeCounter struct {
	net.Conn
	writes atomic.Int32
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes.Add(1)
	return w.Conn.Write(p)
}

// TestPipelinedRequestsAnsweredTogether: requests that arrive in one read
// are answered in order with one write, as SPDK's server flushes a
// connection's queued replies once per poll, not one write per reply.
func TestPipelinedRequestsAnsweredTogether(t *testing.T) {
	srv := NewServer(t)
	srv.mu.Lock()
	in := srv.cur
	srv.mu.Unlock()
	client, server := net.Pipe()
	wc := &writeCounter{Conn: server}
	served := make(chan struct{})
	go func() {
		defer close(served)
		in.serveConn(wc)
	}()
	t.Cleanup(func() {
		_ = client.Close()
		<-served
	})
	const n = 50
	var reqs strings.Builder
	for i := range n {
		fmt.Fprintf(&reqs, `{"jsonrpc":"2.0","method":"spdk_get_version","id":%d}`, i)
	}
	go func() { _, _ = io.WriteString(client, reqs.String()) }() // one write: the server reads it at once
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(client)
	for i := range n {
		l, err := r.ReadString('\n')
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(l, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"version":"SPDK v24.01`, i)), l)
	}
	require.Equal(t, int32(1), wc.writes.Load(), "replies to requests read together are written together")
}
