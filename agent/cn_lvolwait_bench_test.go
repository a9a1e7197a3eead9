package agent

import (
	"testing"

	"github.com/vda-io/vda/api/agentpb"
)

// BenchmarkCNResyncMissingLvstore times a resync of a controller node whose
// one initialized array has lost its lvstore, after a first sync that
// reported it (cnLvolWait is 1 s in this package's tests, 10 s in
// production).
func BenchmarkCNResyncMissingLvstore(b *testing.B) {
	cl := newCNCluster(b, 2, 2, 1)
	cl.syncDNs()
	cl.initialized = true
	p := cl.cns[0]
	sync := func() {
		out := p.syncCN(cl.cnState(0))
		if cnStatus(b, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[0]).GetOk() {
			b.Fatal("the array was served without its lvstore")
		}
	}
	sync()
	b.ResetTimer()
	for range b.N {
		sync()
	}
}
