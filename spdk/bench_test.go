package spdk

import (
	"context"
	"runtime"
	"testing"
	"time"
)

var versionResult = []byte(`{"version":"SPDK v24.01 git sha1 0786843e99","fields":{"major":24,"minor":1,"patch":0,"suffix":"","commit":"0786843e99"}}`)

// benchServer answers every request with a pre-encoded spdk_get_version result. Note that
// allocs/op counts the in-process server's allocations too.
func benchServer(b *testing.B) *Client {
	s := newTestServer(b, func(r *serverReq) { r.replyRawResult(versionResult) })
	return dialTest(b, s)
}

func reportRate(b *testing.B, start time.Time) {
	if el := time.Since(start).Seconds(); el > 0 {
		b.ReportMetric(float64(b.N)/el, "calls/s")
	}
}

// BenchmarkCallSerial: one caller, one call at a time (a round trip per call).
func BenchmarkCallSerial(b *testing.B) {
	c := benchServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if _, err := c.SpdkGetVersion(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

// BenchmarkCallParallel64: 64 concurrent callers pipelining on the one connection.
func BenchmarkCallParallel64(b *testing.B) {
	c := benchServer(b)
	ctx := context.Background()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((64 + procs - 1) / procs)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.SpdkGetVersion(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, start)
}

// pollingServer mimics SPDK's RPC poller: requests queue up and are answered in batches every
// 4 ms, so a caller waiting for each reply in turn is latency-bound while pipelined callers
// share each poll.
func pollingServer(b *testing.B) *Client {
	queue := make(chan *serverReq, 4096)
	s := newTestServer(b, func(r *serverReq) { queue <- r })
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(4 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for n := len(queue); n > 0; n-- {
				(<-queue).replyRawResult(versionResult)
			}
		}
	}()
	b.Cleanup(func() { close(stop); <-done })
	return dialTest(b, s)
}

// BenchmarkPolledSerial and BenchmarkPolledParallel64 compare one caller with 64 pipelined
// callers against an SPDK-like 4 ms poller.
func BenchmarkPolledSerial(b *testing.B) {
	c := pollingServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if _, err := c.SpdkGetVersion(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

func BenchmarkPolledParallel64(b *testing.B) {
	c := pollingServer(b)
	ctx := context.Background()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((64 + procs - 1) / procs)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.SpdkGetVersion(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, start)
}
