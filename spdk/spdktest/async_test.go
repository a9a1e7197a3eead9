package spdktest

import (
	"encoding/json"
	"sync"
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

// bdev_raid_create reads its members' superblocks in the background, as
// SPDK does (raid_bdev_load_base_bdev_superblock): while a member's read
// is slow (a member over NVMe-oF), the requests after it are answered and
// list the raid configuring; the create answers once the reads complete,
// and a member carrying a superblock still fails it.
func TestRaidCreateReadsMembersInTheBackground(t *testing.T) {
	srv := NewServer(t, WithWaitForRPC())
	rc := dialRaw(t, srv.SockPath())
	rc.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false}) // as the agents run SPDK
	rc.ok("framework_start_init", nil)
	for _, m := range []string{"m0", "m1", "m2"} {
		rc.ok("bdev_malloc_create", map[string]any{"name": m, "block_size": 4096, "num_blocks": 1024})
	}
	dev := &gatedDevice{open: make(chan struct{}), reading: make(chan struct{})}
	opened := sync.OnceFunc(func() { close(dev.open) })
	t.Cleanup(opened) // before the server's: a failed test does not leave a read waiting
	srv.mu.Lock()
	st := srv.cur.st
	srv.mu.Unlock()
	st.mu.Lock()
	require.Nil(t, st.registerBdev(&bdev{name: "slow", uuid: newUUID(), product: "Malloc disk", blockSize: 4096,
		numBlocks: 1024, io: ioMalloc, dev: dev}))
	st.mu.Unlock()

	rc.send(`{"jsonrpc":"2.0","id":1,"method":"bdev_raid_create","params":{"name":"r0","raid_level":"raid0","strip_size_kb":64,"base_bdevs":["m0","slow"]}}` +
		`{"jsonrpc":"2.0","id":2,"method":"bdev_raid_get_bdevs","params":{"category":"all"}}`)
	select {
	case <-dev.reading:
	case <-time.After(10 * time.Second):
		t.Fatal("the create never read the slow member")
	}
	id, result := rc.reply()
	require.Equal(t, 2, id, "the request after the create waited for its reads")
	require.Contains(t, string(result), `"state":"configuring"`)
	opened()
	id, result = rc.reply()
	require.Equal(t, 1, id)
	require.JSONEq(t, `true`, string(result))
	require.Contains(t, string(rc.ok("bdev_raid_get_bdevs", map[string]any{"category": "online"})), `"name":"r0"`)

	// A member with a superblock (of a raid made with one) is refused.
	rc.ok("bdev_raid_create", map[string]any{"name": "sb", "raid_level": "raid0", "strip_size_kb": 64,
		"base_bdevs": []string{"m1", "m2"}, "superblock": true})
	rc.ok("bdev_raid_delete", map[string]any{"name": "sb"})
	msg := rc.fails(-17, "bdev_raid_create", map[string]any{"name": "r1", "raid_level": "raid0", "strip_size_kb": 64,
		"base_bdevs": []string{"m1", "m2"}})
	require.Contains(t, msg, "Failed to create RAID bdev r1")
	require.NotContains(t, string(rc.ok("bdev_raid_get_bdevs", map[string]any{"category": "all"})), `"r1"`)
}
