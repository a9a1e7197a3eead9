package blockdev

import (
	"fmt"
	"testing"
)

// BenchmarkMemory measures the sparse memory disk.
//
//	go test -run '^$' -bench Memory -benchtime 2s ./spdk/spdktest/blockdev/
func BenchmarkMemory(b *testing.B) {
	const span = 256 << 20
	for _, size := range []int{4 << 10, 128 << 10} {
		m := NewMemory(512, span/512)
		buf := make([]byte, size)
		slots := int64(span / size)
		b.Run(fmt.Sprintf("write/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := int64(0); b.Loop(); i++ {
				if _, err := m.WriteAt(buf, (i%slots)*int64(size)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("read/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := int64(0); b.Loop(); i++ {
				if _, err := m.ReadAt(buf, (i%slots)*int64(size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLvolWrite measures writes through a thick lvol on a raid0 of
// two memory disks.
func BenchmarkLvolWrite(b *testing.B) {
	r, err := NewRaid0([]Device{NewMemory(512, 128<<20/512), NewMemory(512, 128<<20/512)}, 64)
	if err != nil {
		b.Fatal(err)
	}
	s, err := CreateLvstore(r, LvstoreOptions{Name: "b"})
	if err != nil {
		b.Fatal(err)
	}
	l, err := s.CreateLvol("v", "", 128<<20, false, "")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 128<<10)
	b.SetBytes(int64(len(buf)))
	slots := int64(128 << 20 / len(buf))
	for i := int64(0); b.Loop(); i++ {
		if _, err := l.WriteAt(buf, (i%slots)*int64(len(buf))); err != nil {
			b.Fatal(err)
		}
	}
}
