package blockdev

import "testing"

// BenchmarkLoadLvstore measures an examine: loading an lvstore from a
// raid0 of two members (64 KiB strip, 4 MiB clusters, as a DA's VDs).
func BenchmarkLoadLvstore(b *testing.B) {
	r := raid(b, 64, NewMemory(512, 16*mib/512), NewMemory(512, 16*mib/512))
	s := newStore(b, r, LvstoreOptions{Name: "lvs"})
	if _, err := s.CreateLvol("vol", "", 16*mib, false, ""); err != nil {
		b.Fatal(err)
	}
	c := countStriped(r)
	for b.Loop() {
		if _, err := LoadLvstore(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.read)/float64(b.N), "read-B/op")
}
