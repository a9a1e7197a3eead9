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
