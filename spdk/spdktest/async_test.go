package spdktest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// SPDK's JSON-RPC server hands every request it reads to its method at
// once and queues each reply when the method completes: an asynchronous
// method (waiting for examines, for a bdev, for an NVMe-oF connect) does
// not hold up the requests after it on the same connection, whose replies
// come first.
func TestAsynchronousMethodsDoNotBlockTheConnection(t *testing.T) {
	srv := NewServer(t, WithExamineDelay(time.Hour)) // auto examine on: every new bdev is examined
	rc := dialRaw(t, srv.SockPath())
	rc.ok("bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 256})
	require.Equal(t, 1, srv.PendingExamines())

	rc.send(`{"jsonrpc":"2.0","id":1,"method":"bdev_wait_for_examine"}` +
		`{"jsonrpc":"2.0","id":2,"method":"bdev_get_bdevs","params":{"name":"late","timeout":60000}}` +
		`{"jsonrpc":"2.0","id":3,"method":"bdev_malloc_create","params":{"name":"late","block_size":4096,"num_blocks":8}}` +
		`{"jsonrpc":"2.0","id":4,"method":"spdk_get_version"}`)
	got := map[int]json.RawMessage{}
	for range 3 {
		id, result := rc.reply()
		got[id] = result
	}
	require.Contains(t, got, 2, "bdev_get_bdevs answers once the bdev exists")
	require.Contains(t, string(got[2]), `"name":"late"`)
	require.JSONEq(t, `"late"`, string(got[3]))
	require.Contains(t, got, 4)
	require.Equal(t, 2, srv.PendingExamines(), "bdev_wait_for_examine is still waiting")

	srv.CompleteExamines()
	id, result := rc.reply()
	require.Equal(t, 1, id)
	require.JSONEq(t, `true`, string(result))
}

// A reply lost by DropReply on an asynchronous method still closes the
// connection once the method ran, and the method's effect stays.
func TestDropReplyOnAsynchronousMethod(t *testing.T) {
	srv := NewServer(t)
	srv.Inject("bdev_get_bdevs", Fault{DropReply: true, Times: 1})
	rc := dialRaw(t, srv.SockPath())
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"bdev_get_bdevs","params":{"name":"late","timeout":60000}}`)
	other := dialRaw(t, srv.SockPath())
	require.Eventually(t, func() bool { return srv.RPCCount("bdev_get_bdevs") == 1 }, 10*time.Second, time.Millisecond)
	other.ok("bdev_null_create", map[string]any{"name": "late", "block_size": 512, "num_blocks": 8})
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.r.ReadByte()
	require.Error(t, err, "the connection closes without a reply")
	require.Contains(t, string(other.ok("bdev_get_bdevs", map[string]any{"name": "late"})), `"name":"late"`)
}

// reply reads one reply and returns its integer id and result (it fails
// the test on an error reply).
func (rc *rawConn) reply() (int, json.RawMessage) {
	rc.t.Helper()
	var r struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  any             `json:"error"`
	}
	line := rc.line()
	require.NoError(rc.t, json.Unmarshal([]byte(line), &r), line)
	require.Nil(rc.t, r.Error, line)
	return r.ID, r.Result
}
