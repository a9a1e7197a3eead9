package spdktest

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gatedDevice is a blank device whose reads wait until open is closed.
type gatedDevice struct {
	open    chan struct{}
	reading chan struct{} // closed at the first read
	once    sync.Once
}

func (d *gatedDevice) BlockSize() uint32 { return 4096 }
func (d *gatedDevice) NumBlocks() uint64 { return 1024 }

func (d *gatedDevice) ReadAt(p []byte, _ int64) (int, error) {
	d.once.Do(func() { close(d.reading) })
	<-d.open
	clear(p)
	return len(p), nil
}

func (d *gatedDevice) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }

// Examine reads the metadata while the target goes on answering, as SPDK's
// asynchronous examine does: requests on any connection are answered while
// a read is outstanding, and bdev_wait_for_examine answers once it is done.
func TestExamineReadsWithoutBlockingTheTarget(t *testing.T) {
	srv := NewServer(t, WithWaitForRPC())
	rc := dialRaw(t, srv.SockPath())
	rc.ok("bdev_set_options", map[string]any{"bdev_auto_examine": false})
	rc.ok("framework_start_init", nil)
	dev := &gatedDevice{open: make(chan struct{}), reading: make(chan struct{})}
	srv.mu.Lock()
	s := srv.cur.st
	srv.mu.Unlock()
	s.mu.Lock()
	require.Nil(t, s.registerBdev(&bdev{name: "slow", uuid: newUUID(), product: "Malloc disk", blockSize: 4096,
		numBlocks: 1024, io: ioMalloc, dev: dev}))
	s.mu.Unlock()

	rc.ok("bdev_examine", map[string]any{"name": "slow"})
	waited := make(chan reply, 1)
	waiter := dialRaw(t, srv.SockPath())
	go func() { waited <- waiter.call("bdev_wait_for_examine", nil) }()
	select {
	case <-dev.reading:
	case <-time.After(10 * time.Second):
		t.Fatal("examine never read the device")
	}
	rc.ok("spdk_get_version", nil)
	rc.ok("bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 16})
	rc.ok("bdev_get_bdevs", nil)
	require.Equal(t, 1, srv.PendingExamines())
	select {
	case r := <-waited:
		t.Fatalf("bdev_wait_for_examine answered during the read: %+v", r)
	default:
	}
	close(dev.open)
	r := <-waited
	require.Nil(t, r.Error)
	require.Zero(t, srv.PendingExamines())
	rc.fails(-19, "bdev_lvol_get_lvstores", map[string]any{"lvs_name": "none"})
}
