package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/etcdembed"
	"github.com/vda-io/vda/store/etcdstore"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
	"github.com/vda-io/vda/store/storetest"
)

// BenchmarkStore runs the shared store benchmarks (transactions/s, reads/s
// and contended updates/s with 1 and 16 clients) on an embedded etcd (data
// on disk, fsync on every commit) and on each SQL backend, in one run so the
// numbers compare; each benchmark gets a fresh database (etcd: a fresh key
// prefix):
//
//	export VDA_SQLSERVERS_DURABLE=1 # PostgreSQL and MariaDB sync on commit, as etcd does
//	eval "$(scripts/sqlservers start)"
//	go test -run '^$' -bench BenchmarkStore ./store/sqlstore/
//	scripts/sqlservers stop
func BenchmarkStore(b *testing.B) {
	b.Run("etcd", func(b *testing.B) {
		cli := benchEtcd(b)
		storetest.Bench(b, func(b *testing.B) store.Store {
			s, err := etcdstore.New(cli, etcdstore.Config{Prefix: fmt.Sprintf("/bench/%d/", benchEtcdN.Add(1))})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		})
	})
	for _, be := range sqltest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			storetest.Bench(b, func(b *testing.B) store.Store { return newStore(b, be) })
		})
	}
}

// One embedded etcd for every etcd benchmark of the run: starting one per
// call of a benchmark function would dominate the run time.
var (
	benchEtcdOnce sync.Once
	benchEtcdDir  string
	benchEtcdSrv  *etcdembed.Server
	benchEtcdCli  *clientv3.Client
	benchEtcdErr  error
	benchEtcdN    atomic.Int64
)

// TestMain stops the shared benchmark etcd, if one was started.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchEtcdCli != nil {
		_ = benchEtcdCli.Close()
	}
	if benchEtcdSrv != nil {
		_ = benchEtcdSrv.Close()
	}
	if benchEtcdDir != "" {
		_ = os.RemoveAll(benchEtcdDir)
	}
	os.Exit(code)
}

func benchEtcd(b *testing.B) *clientv3.Client {
	benchEtcdOnce.Do(func() {
		benchEtcdDir, benchEtcdErr = os.MkdirTemp("", "sqlstore-bench-etcd")
		if benchEtcdErr != nil {
			return
		}
		benchEtcdSrv, benchEtcdErr = etcdembed.Start(context.Background(), etcdembed.DefaultConfig(benchEtcdDir))
		if benchEtcdErr != nil {
			return
		}
		benchEtcdCli, benchEtcdErr = benchEtcdSrv.Client()
	})
	if benchEtcdErr != nil {
		b.Fatal(benchEtcdErr)
	}
	return benchEtcdCli
}
