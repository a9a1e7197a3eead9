package sqlstore_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
	"github.com/vda-io/vda/store/storetest"
)

// newStore opens a store on a fresh database with its schema.
func newStore(t testing.TB, b sqltest.Backend) *sqlstore.Store {
	t.Helper()
	return openStore(t, createSchema(t, b.Fresh(t)))
}

func createSchema(t testing.TB, uri string) string {
	t.Helper()
	v, err := sqlstore.CreateSchema(ctxT(t), uri)
	require.NoError(t, err)
	require.Equal(t, sqlstore.SchemaVersion, v)
	return uri
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t testing.TB, uri string) *sqlstore.Store {
	t.Helper()
	cfg := sqlstore.DefaultConfig()
	cfg.URI = uri
	cfg.ReapInterval = 100 * time.Millisecond
	s, err := sqlstore.New(ctxT(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, b := range sqltest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, b) })
		})
	}
}

// Two Stores on one database are two clients: they share one history, and
// a watcher of one sees the writes of the other (PostgreSQL: NOTIFY, so
// polling is off there; MySQL and SQLite: polling).
func TestTwoClients(t *testing.T) {
	for _, b := range sqltest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			uri := createSchema(t, b.Fresh(t))
			a := openStore(t, uri)
			c := openWith(t, uri, func(c *sqlstore.Config) {
				c.PollInterval = 20 * time.Millisecond
				if b.Name == "postgres" {
					c.PollInterval = time.Hour
				}
			})
			ctx := ctxT(t)
			w, err := c.Watch(ctx, "k/", 0)
			require.NoError(t, err)
			defer w.Close()
			res, err := a.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k/1", Value: []byte("v")}}})
			require.NoError(t, err)
			kv, err := c.Get(ctx, "k/1")
			require.NoError(t, err)
			assert.Equal(t, res.Revision, kv.ModRevision)
			select {
			case resp := <-w.Events():
				require.NoError(t, resp.Err)
				require.Len(t, resp.Events, 1)
				assert.Equal(t, "k/1", resp.Events[0].KV.Key)
				assert.Equal(t, res.Revision, resp.Revision)
			case <-time.After(10 * time.Second):
				t.Fatal("the other client's watcher saw nothing")
			}
		})
	}
}

// N goroutines spread over two clients increment one counter with CAS; the
// counter must end at exactly N (no lost update across connections).
func TestCounterAcrossClients(t *testing.T) {
	const workers, each = 8, 10
	for _, b := range sqltest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			uri := createSchema(t, b.Fresh(t))
			clients := []*sqlstore.Store{openStore(t, uri), openStore(t, uri)}
			ctx := ctxT(t)
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for i := range workers {
				s := clients[i%2]
				wg.Go(func() {
					for range each {
						err := store.Update(ctx, s, func(tx *store.Tx) error {
							n := 0
							if kv, err := tx.Get("n"); err == nil {
								n, _ = strconv.Atoi(string(kv.Value))
							}
							tx.Put("n", []byte(strconv.Itoa(n+1)))
							return nil
						})
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			kv, err := clients[0].Get(ctx, "n")
			require.NoError(t, err)
			assert.Equal(t, strconv.Itoa(workers*each), string(kv.Value))
			assert.Equal(t, int64(workers*each), kv.Version)
		})
	}
}
