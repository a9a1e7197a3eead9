package sqlstore_test

import (
	"testing"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
	"github.com/vda-io/vda/store/storetest"
)

// BenchmarkStore runs the shared store benchmarks (transactions/s, reads/s
// and contended updates/s with 1 and 16 clients) on each SQL backend, each
// benchmark on a fresh database:
//
//	eval "$(scripts/sqlservers start)"
//	go test -run '^$' -bench BenchmarkStore ./store/sqlstore/
func BenchmarkStore(b *testing.B) {
	for _, be := range sqltest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			storetest.Bench(b, func(b *testing.B) store.Store { return newStore(b, be) })
		})
	}
}
