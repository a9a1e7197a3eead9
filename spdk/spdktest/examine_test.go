package spdktest

import (
	"testing"
	"time"
)

// With auto examine on, loading an lvstore registers its lvols, which are
// examined in turn: bdev_wait_for_examine must wait for those too and then
// return (it used to wait for a round that never ended).
func TestWaitForExamineWithAutoExamineAndLvols(t *testing.T) {
	srv := NewServer(t)
	rc := dialRaw(t, srv.SockPath())
	path := t.TempDir() + "/disk.img"
	if err := createSparse(path, 64<<20); err != nil {
		t.Fatal(err)
	}
	rc.ok("bdev_aio_create", map[string]any{"name": "a0", "filename": path, "block_size": 4096})
	rc.ok("bdev_wait_for_examine", nil)
	rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "a0", "lvs_name": "lvs"})
	rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "lvs", "lvol_name": "v", "size_in_mib": 8})

	srv.Crash()
	if err := srv.Restart(false); err != nil {
		t.Fatal(err)
	}
	rc = dialRaw(t, srv.SockPath())
	rc.ok("bdev_aio_create", map[string]any{"name": "a0", "filename": path, "block_size": 4096})
	done := make(chan struct{})
	go func() { rc.ok("bdev_wait_for_examine", nil); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("bdev_wait_for_examine did not return")
	}
	rc.ok("bdev_get_bdevs", map[string]any{"name": "lvs/v"})
}
