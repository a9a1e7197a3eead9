package fabric

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// BenchmarkFabric measures one connection over loopback against a memory
// namespace, one request at a time (qd1) and 16 at once (qd16).
//
//	go test -run '^$' -bench Fabric -benchtime 2s ./spdk/spdktest/fabric/
func BenchmarkFabric(b *testing.B) {
	const span = 64 << 20
	dev := blockdev.NewMemory(4096, span/4096)
	_, trid := newTarget(b, dev)
	c := dial(b, trid, host1)
	if _, err := c.WriteAt(1, make([]byte, span), 0); err != nil { // allocate up front
		b.Fatal(err)
	}
	for _, size := range []int{4 << 10, 128 << 10} {
		for _, op := range []string{"write", "read"} {
			for _, qd := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%dKiB/qd%d", op, size>>10, qd), func(b *testing.B) {
					benchIO(b, c, op, size, qd, span)
				})
			}
		}
	}
}

func benchIO(b *testing.B, c *Conn, op string, size, qd int, span int64) {
	b.SetBytes(int64(size))
	// RunParallel runs parallelism x GOMAXPROCS goroutines: qd in all.
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((qd + procs - 1) / procs)
	slots := span / int64(size)
	run := func(buf []byte, i int64) error {
		off := (i % slots) * int64(size)
		var err error
		if op == "write" {
			_, err = c.WriteAt(1, buf, off)
		} else {
			_, err = c.ReadAt(1, buf, off)
		}
		return err
	}
	if qd == 1 {
		buf := make([]byte, size)
		for i := 0; b.Loop(); i++ {
			if err := run(buf, int64(i)); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, size)
		for i := int64(0); pb.Next(); i += 7 {
			if err := run(buf, i); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
