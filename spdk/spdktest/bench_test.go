package spdktest

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"testing"
)

// BenchmarkGetBdevsPipelined measures bdev_get_bdevs round trips on one
// connection with 64 requests in flight, over four small bdevs.
func BenchmarkGetBdevsPipelined(b *testing.B) {
	srv := NewServer(b)
	rc := dialRaw(b, srv.SockPath())
	for i := 0; i < 4; i++ {
		rc.ok("bdev_malloc_create", map[string]any{"name": fmt.Sprintf("m%d", i), "block_size": 512, "num_blocks": 8})
	}
	c, err := net.Dial("unix", srv.SockPath())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const window = 64
	req := []byte(`{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":1}`)
	sem := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(c, 1<<20)
		for i := 0; i < b.N; i++ {
			if _, err := r.ReadSlice('\n'); err != nil {
				done <- err
				return
			}
			<-sem
		}
		done <- nil
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rpcs/s")
}

// BenchmarkGetBdevsSequential is one request per round trip.
func BenchmarkGetBdevsSequential(b *testing.B) {
	srv := NewServer(b)
	rc := dialRaw(b, srv.SockPath())
	rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 512, "num_blocks": 8})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rc.send(`{"method":"bdev_get_bdevs","id":1}`)
		rc.line()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rpcs/s")
}

// BenchmarkMemoryPer1000Lvols reports the heap held by 1,000 thin lvols on a
// 4 GiB malloc lvstore.
func BenchmarkMemoryPer1000Lvols(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		srv := NewServer(b)
		rc := dialRaw(b, srv.SockPath())
		rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 1 << 20})
		rc.ok("bdev_lvol_create_lvstore", map[string]any{"bdev_name": "m", "lvs_name": "lvs", "cluster_sz": 1 << 20, "clear_method": "none"})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for j := 0; j < 1000; j++ {
			rc.ok("bdev_lvol_create", map[string]any{"lvs_name": "lvs", "lvol_name": fmt.Sprintf("lv%d", j), "size_in_mib": 4, "thin_provision": true})
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1000, "bytes/lvol")
		_ = srv.Close()
		b.StartTimer()
	}
}
