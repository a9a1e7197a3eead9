package devcluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/devcluster"
	"github.com/vda-io/vda/failover"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"github.com/vda-io/vda/store/sqlstore"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
)

// TestEveryStore runs portal, monitor and agents unchanged on every store
// backend: a DA is created, exported and written and read by a host.
func TestEveryStore(t *testing.T) {
	stores := []struct {
		name string
		uri  func(t *testing.T) string
	}{
		{"memory", func(*testing.T) string { return "memory://" }},
		{"embedded-etcd", func(*testing.T) string { return "" }},
	}
	for _, b := range sqltest.Backends() {
		stores = append(stores, struct {
			name string
			uri  func(t *testing.T) string
		}{b.Name, func(t *testing.T) string {
			uri := b.Fresh(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := sqlstore.CreateSchema(ctx, uri)
			require.NoError(t, err)
			return uri
		}})
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			uri := s.uri(t)
			c, err := devcluster.New(devcluster.Config{DataDir: t.TempDir(), StoreURI: uri, AnyPorts: true,
				Register: true, PDSizeBytes: 128 << 20,
				Failover: failover.Config{Interval: 100 * time.Millisecond, MissThreshold: 3, Window: time.Second,
					SlowTimeout: 5 * time.Second, HoldDown: 10 * time.Second}})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
			select {
			case <-c.Ready():
			case err := <-done:
				done <- nil // for the cleanup
				t.Fatalf("cluster did not start: %v", err)
			}
			api := c.API()
			_, err = api.CreateDiskArray(ctx, vda.DiskArraySpec{Name: "da0", CntlrCount: 2, SizeBytes: 16 << 20,
				PhysicalSizeBytes: 16 << 20, Conf: vda.DAConf{StripeCount: 2, StripeSizeKB: 64}})
			require.NoError(t, err)
			_, err = api.CreateExporter(ctx, vda.ExporterSpec{DAName: "da0", Name: "exp0", InitiatorNQN: hostNQN})
			require.NoError(t, err)
			exp := exported(t, api, 0)
			m := multipath(t, exp)
			io, cancelIO := context.WithTimeout(ctx, time.Minute)
			defer cancelIO()
			res, err := fabric.RunSeq(io, m, fabric.SeqWorkload{NSID: 1, BlockSize: 4096, Blocks: 256, Count: 300})
			require.NoError(t, err)
			require.NoError(t, fabric.VerifySeq(io, m, res))
		})
	}
}
