package sqlstore_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/sqlstore"
	"github.com/vda-io/vda/store/sqlstore/sqltest"
)

func openWith(t testing.TB, uri string, edit func(*sqlstore.Config)) *sqlstore.Store {
	t.Helper()
	cfg := sqlstore.DefaultConfig()
	cfg.URI = uri
	edit(&cfg)
	s, err := sqlstore.New(ctxT(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Expiry is judged by the database's clock alone: moving a lease's expiry
// into the database's past (as if its clock had run on) ends it at once,
// for reads, KeepAlive and Txn conditions, and watchers see the delete.
func TestLeaseExpiryByDatabaseClock(t *testing.T) {
	for _, b := range sqltest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			uri := createSchema(t, b.Fresh(t))
			// No periodic reaping: only access notices the expiry.
			s := openWith(t, uri, func(c *sqlstore.Config) { c.ReapInterval = time.Hour })
			ctx := ctxT(t)
			id, err := s.Grant(ctx, time.Hour)
			require.NoError(t, err)
			put, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "l/k", Value: []byte("v"), Lease: id}}})
			require.NoError(t, err)
			w, err := s.Watch(ctx, "l/", 0)
			require.NoError(t, err)
			defer w.Close()
			require.NoError(t, s.KeepAlive(ctx, id))

			sqltest.Exec(t, uri, "UPDATE vda_lease SET expires_ms = expires_ms - 7200000")

			_, err = s.Get(ctx, "l/k")
			require.ErrorIs(t, err, store.ErrNotFound, "hidden as soon as the database's clock says so")
			list, err := s.List(ctx, "l/", store.ListOptions{})
			require.NoError(t, err)
			assert.Empty(t, list.KVs)
			require.ErrorIs(t, s.KeepAlive(ctx, id), store.ErrLeaseNotFound)
			res, err := s.Txn(ctx, store.Txn{
				Conds: []store.Cond{{Key: "l/k", ModRevision: 0}},
				Ops:   []store.Op{{Key: "l/k", Value: []byte("new")}},
			})
			require.NoError(t, err)
			require.True(t, res.Succeeded, "a Txn reaps expired leases before checking its conditions")

			var events []store.Event
			for len(events) < 2 {
				select {
				case resp := <-w.Events():
					require.NoError(t, resp.Err)
					events = append(events, resp.Events...)
				case <-time.After(10 * time.Second):
					t.Fatalf("got %d of 2 events", len(events))
				}
			}
			assert.Equal(t, store.EventDelete, events[0].Type)
			assert.Greater(t, events[0].KV.ModRevision, put.Revision)
			assert.Equal(t, store.EventPut, events[1].Type)
			assert.Equal(t, res.Revision, events[1].KV.ModRevision)
		})
	}
}

// The reaper trims history to KeepRevisions; older watch positions get
// ErrCompacted, recent ones still replay.
func TestAutoCompaction(t *testing.T) {
	for _, b := range sqltest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			uri := createSchema(t, b.Fresh(t))
			s := openWith(t, uri, func(c *sqlstore.Config) {
				c.KeepRevisions = 5
				c.ReapInterval = 20 * time.Millisecond
			})
			ctx := ctxT(t)
			var first, last int64
			for i := range 20 {
				res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: fmt.Sprintf("c/%d", i), Value: []byte("v")}}})
				require.NoError(t, err)
				if i == 0 {
					first = res.Revision
				}
				last = res.Revision
			}
			require.Eventually(t, func() bool {
				w, err := s.Watch(ctx, "c/", first)
				if err == nil {
					w.Close()
				}
				return err != nil
			}, 10*time.Second, 10*time.Millisecond, "old history must be compacted")
			_, err := s.Watch(ctx, "c/", first)
			require.ErrorIs(t, err, store.ErrCompacted)

			w, err := s.Watch(ctx, "c/", last-4)
			require.NoError(t, err, "the last KeepRevisions revisions are kept")
			defer w.Close()
			var n int
			for n < 5 {
				select {
				case resp := <-w.Events():
					require.NoError(t, resp.Err)
					n += len(resp.Events)
				case <-time.After(10 * time.Second):
					t.Fatalf("replayed %d of 5", n)
				}
			}
		})
	}
}

// A backlog larger than one read of the log (1000 rows), including one
// revision larger than that (a revoked lease's keys), arrives complete, in
// order, and never splits a revision across responses.
func TestWatchBacklog(t *testing.T) {
	const txns, perTxn = 10, 120
	for _, b := range sqltest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := newStore(t, b)
			ctx := ctxT(t)
			id, err := s.Grant(ctx, time.Hour)
			require.NoError(t, err)
			start, err := s.Revision(ctx)
			require.NoError(t, err)
			for i := range txns {
				ops := make([]store.Op, perTxn)
				for j := range ops {
					ops[j] = store.Op{Key: fmt.Sprintf("b/%02d/%03d", i, j), Value: []byte("v"), Lease: id}
				}
				_, err := s.Txn(ctx, store.Txn{Ops: ops})
				require.NoError(t, err)
			}
			require.NoError(t, s.Revoke(ctx, id))

			w, err := s.Watch(ctx, "b/", start+1)
			require.NoError(t, err)
			defer w.Close()
			const want = 2 * txns * perTxn
			var events []store.Event
			respOf := map[int64]int{} // revision -> index of the response that carried it
			for i := 0; len(events) < want; i++ {
				select {
				case resp := <-w.Events():
					require.NoError(t, resp.Err)
					for _, ev := range resp.Events {
						if j, seen := respOf[ev.KV.ModRevision]; seen {
							require.Equal(t, i, j, "revision %d split across responses", ev.KV.ModRevision)
						}
						respOf[ev.KV.ModRevision] = i
					}
					events = append(events, resp.Events...)
				case <-time.After(20 * time.Second):
					t.Fatalf("got %d of %d events", len(events), want)
				}
			}
			require.Len(t, events, want)
			for i := 1; i < len(events); i++ {
				require.GreaterOrEqual(t, events[i].KV.ModRevision, events[i-1].KV.ModRevision)
			}
			for _, ev := range events[:want/2] {
				assert.Equal(t, store.EventPut, ev.Type)
			}
			revoke := events[want/2].KV.ModRevision
			for _, ev := range events[want/2:] {
				assert.Equal(t, store.EventDelete, ev.Type)
				assert.Equal(t, revoke, ev.KV.ModRevision, "a revoke deletes at one revision")
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	ctx := ctxT(t)
	_, err := sqlstore.New(ctx, sqlstore.Config{URI: "oracle://h/db"})
	assert.ErrorIs(t, err, store.ErrInvalidURI)
	_, err = sqlstore.New(ctx, sqlstore.Config{URI: sqltest.FreshSQLite(t), ReapInterval: -time.Second})
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	_, err = store.Open(ctx, "mysql://u:p@h")
	assert.ErrorIs(t, err, store.ErrInvalidURI)
	_, err = store.Open(ctx, sqltest.FreshSQLite(t))
	assert.ErrorIs(t, err, sqlstore.ErrNoSchema)
}

// When the LISTEN connection dies, the store reconnects, and watchers of
// other clients' writes keep working without polling.
func TestPostgresListenReconnect(t *testing.T) {
	base := sqltest.FreshPostgres(t)
	u, err := url.Parse(base)
	require.NoError(t, err)
	app := "vda-listen-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	uri := createSchema(t, u.String())
	writer := openStore(t, uri)
	watcher := openWith(t, uri, func(c *sqlstore.Config) { c.PollInterval = time.Hour })
	ctx := ctxT(t)
	w, err := watcher.Watch(ctx, "k/", 0)
	require.NoError(t, err)
	defer w.Close()

	listeners := func() []int64 {
		db, err := sql.Open("pgx", base)
		require.NoError(t, err)
		defer db.Close()
		rows, err := db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'LISTEN%'`, app)
		require.NoError(t, err)
		defer rows.Close()
		var pids []int64
		for rows.Next() {
			var pid int64
			require.NoError(t, rows.Scan(&pid))
			pids = append(pids, pid)
		}
		return pids
	}
	expect := func(key string) {
		t.Helper()
		_, err := writer.Txn(ctx, store.Txn{Ops: []store.Op{{Key: key, Value: []byte("v")}}})
		require.NoError(t, err)
		select {
		case resp := <-w.Events():
			require.NoError(t, resp.Err)
			require.Len(t, resp.Events, 1)
			assert.Equal(t, key, resp.Events[0].KV.Key)
		case <-time.After(10 * time.Second):
			t.Fatalf("no event for %s", key)
		}
	}
	var old []int64
	require.Eventually(t, func() bool { old = listeners(); return len(old) == 1 }, 10*time.Second, 20*time.Millisecond)
	expect("k/1")

	sqltest.Exec(t, base, fmt.Sprintf("SELECT pg_terminate_backend(%d)", old[0]))
	require.Eventually(t, func() bool {
		now := listeners()
		return len(now) == 1 && now[0] != old[0]
	}, 10*time.Second, 20*time.Millisecond, "the store must LISTEN again")
	expect("k/2")
}
