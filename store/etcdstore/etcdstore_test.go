package etcdstore_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/etcdembed"
	"github.com/vda-io/vda/store/etcdstore"
	"github.com/vda-io/vda/store/storetest"
)

// One embedded server for the package's tests, started on first use.
var shared struct {
	once sync.Once
	dir  string
	srv  *etcdembed.Server
	cli  *clientv3.Client
	err  error
	n    atomic.Int64
}

// fastConfig makes elections (and so the shortest lease) fast.
func fastConfig(dir string) etcdembed.Config {
	return etcdembed.Config{
		Dir:               dir,
		HeartbeatInterval: 10 * time.Millisecond,
		ElectionTimeout:   100 * time.Millisecond,
	}
}

func sharedServer(t testing.TB) (*etcdembed.Server, *clientv3.Client) {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "etcdstore-test")
		if shared.err != nil {
			return
		}
		shared.srv, shared.err = etcdembed.Start(context.Background(), fastConfig(shared.dir))
		if shared.err != nil {
			return
		}
		shared.cli, shared.err = shared.srv.Client()
	})
	require.NoError(t, shared.err)
	return shared.srv, shared.cli
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		os.Exit(killHelper(dir))
	}
	code := m.Run()
	if shared.cli != nil {
		_ = shared.cli.Close()
	}
	if shared.srv != nil {
		_ = shared.srv.Close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// newStore returns a store under a prefix no other test uses.
func newStore(t testing.TB) *etcdstore.Store {
	_, cli := sharedServer(t)
	s, err := etcdstore.New(cli, etcdstore.Config{Prefix: fmt.Sprintf("/test/%d/", shared.n.Add(1))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newInProcessStore is newStore as etcdembed.Open makes it: through the
// server's in-process client, reading from its single member.
func newInProcessStore(t testing.TB) *etcdstore.Store {
	srv, _ := sharedServer(t)
	cli, closeCli := srv.InProcessClient()
	s, err := etcdstore.New(cli, etcdstore.Config{Prefix: fmt.Sprintf("/test/%d/", shared.n.Add(1)), SingleMember: true})
	require.NoError(t, err)
	s.OnClose(closeCli)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Run("socket", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
	})
	t.Run("inprocess", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return newInProcessStore(t) })
	})
}

// BenchmarkStore runs on an embedded etcd with its data on disk (real
// fsync), through the client over a unix socket and through the
// in-process client.
func BenchmarkStore(b *testing.B) {
	b.Run("socket", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) store.Store { return newStore(b) })
	})
	b.Run("inprocess", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) store.Store { return newInProcessStore(b) })
	})
}
