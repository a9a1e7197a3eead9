package etcdstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/etcdembed"
	"github.com/vda-io/vda/store/etcdstore"
)

// helperEnv, when set to a directory, turns the test binary into the child
// process of TestEmbeddedSurvivesSIGKILL.
const helperEnv = "VDA_ETCDSTORE_KILL_HELPER_DIR"

// killHelper starts the embedded store on dir and writes keys until it is
// killed, printing "ack <key> <value>" after each acknowledged write and
// "ready" after the first ten.
func killHelper(dir string) int {
	ctx := context.Background()
	s, err := etcdembed.Open(ctx, fastConfig(dir), "/kill/")
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	for i := 0; ; i++ {
		key, value := fmt.Sprintf("k/%06d", i), fmt.Sprintf("value-%d", i)
		res, err := s.Txn(ctx, store.Txn{
			Conds: []store.Cond{{Key: key}},
			Ops:   []store.Op{{Key: key, Value: []byte(value)}},
		})
		if err != nil || !res.Succeeded {
			fmt.Println("error", err, res.Succeeded)
			return 1
		}
		fmt.Println("ack", key, value)
		if i == 9 {
			fmt.Println("ready")
		}
	}
}

func TestEmbeddedSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	acked := map[string]string{}
	lines := bufio.NewScanner(out)
	killed := false
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 3 && f[0] == "ack":
			acked[f[1]] = f[2]
		case len(f) == 1 && f[0] == "ready":
		default:
			t.Fatalf("child: %s", lines.Text())
		}
		// Kill it mid-stream, with writes in flight.
		if len(acked) == 25 && !killed {
			require.NoError(t, cmd.Process.Kill()) // SIGKILL
			killed = true
		}
	}
	require.True(t, killed, "child ended before it was killed")
	err = cmd.Wait()
	require.Error(t, err, "the child must have died of the signal")
	require.GreaterOrEqual(t, len(acked), 25)

	s, err := etcdembed.Open(context.Background(), fastConfig(dir), "/kill/")
	require.NoError(t, err, "restart on the killed server's data")
	defer s.Close()
	for key, value := range acked {
		kv, err := s.Get(context.Background(), key)
		require.NoError(t, err, "acknowledged key %s lost", key)
		assert.Equal(t, value, string(kv.Value))
	}
	t.Logf("%d acknowledged keys survived SIGKILL", len(acked))
}

func TestEmbeddedRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := etcdembed.Open(ctx, fastConfig(dir), "")
	require.NoError(t, err)
	var last int64
	for i := range 20 {
		res, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: fmt.Sprintf("r/%d", i), Value: []byte{byte(i)}}}})
		require.NoError(t, err)
		last = res.Revision
	}
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	s, err = etcdembed.Open(ctx, fastConfig(dir), "")
	require.NoError(t, err)
	defer s.Close()
	res, err := s.List(ctx, "r/", store.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, res.KVs, 20)
	rev, err := s.Revision(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rev, last, "revisions continue after a restart")

	// The empty prefix (whole keyspace) lists and watches everything.
	w, err := s.Watch(ctx, "", 0)
	require.NoError(t, err)
	defer w.Close()
	res2, err := s.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "a", Value: []byte("x")}}})
	require.NoError(t, err)
	select {
	case resp := <-w.Events():
		require.NoError(t, resp.Err)
		require.Len(t, resp.Events, 1)
		assert.Equal(t, "a", resp.Events[0].KV.Key)
		assert.Equal(t, res2.Revision, resp.Events[0].KV.ModRevision)
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	all, err := s.List(ctx, "", store.ListOptions{Limit: 2})
	require.NoError(t, err)
	assert.True(t, all.More)
	assert.Equal(t, "a", all.KVs[0].Key)
}

func TestStartEmbeddedRefusesBadConfig(t *testing.T) {
	ctx := context.Background()
	_, err := etcdembed.Start(ctx, etcdembed.Config{})
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	_, err = etcdembed.Start(ctx, etcdembed.Config{Dir: t.TempDir(), Socket: "/" + strings.Repeat("s", 200)})
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	assert.ErrorIs(t, err, etcdembed.ErrEmbedded)
	_, err = etcdembed.Start(ctx, etcdembed.Config{Dir: t.TempDir(), ElectionTimeout: -1})
	assert.ErrorIs(t, err, store.ErrInvalidArgument)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = etcdembed.Start(cctx, fastConfig(t.TempDir()))
	assert.ErrorIs(t, err, context.Canceled)
}

// A second server on a data directory in use fails at once and says so
// (etcd would wait, silently, for the first to stop); once the first
// stops, the directory is free again.
func TestStartRefusesADirectoryInUse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	first, err := etcdembed.Start(ctx, fastConfig(dir))
	require.NoError(t, err)
	_, err = etcdembed.Start(ctx, fastConfig(dir))
	require.ErrorIs(t, err, etcdembed.ErrDirInUse)
	require.ErrorIs(t, err, etcdembed.ErrEmbedded)
	require.NoError(t, ctx.Err(), "refused at once, not after waiting")
	require.NoError(t, first.Close())
	again, err := etcdembed.Start(ctx, fastConfig(dir))
	require.NoError(t, err)
	require.NoError(t, again.Close())
}

// A single member serves reads without a raft round trip
// (Config.SingleMember); Revision must still be at least the revision of
// every write acknowledged before the call, and Get and List must see that
// write, whichever client made it: through the socket or in-process, the
// writer's kind or the other.
func TestSingleMemberReadsSeeCompletedWrites(t *testing.T) {
	ctx := context.Background()
	srv, err := etcdembed.Start(ctx, fastConfig(t.TempDir()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	socket := func() store.Store {
		cli, err := srv.Client()
		require.NoError(t, err)
		t.Cleanup(func() { _ = cli.Close() })
		s, err := etcdstore.New(cli, etcdstore.Config{Prefix: "/single/", SingleMember: true})
		require.NoError(t, err)
		return s
	}
	inProcess := func() store.Store {
		cli, closeCli := srv.InProcessClient()
		t.Cleanup(func() { _ = closeCli() })
		s, err := etcdstore.New(cli, etcdstore.Config{Prefix: "/single/", SingleMember: true})
		require.NoError(t, err)
		return s
	}
	for _, pair := range []struct {
		name           string
		writer, reader store.Store
	}{
		{"socket to socket", socket(), socket()},
		{"socket to in-process", socket(), inProcess()},
		{"in-process to socket", inProcess(), socket()},
		{"in-process to in-process", inProcess(), inProcess()},
	} {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					key := fmt.Sprintf("k/%s/%d/%d", pair.name, g, i)
					res, err := pair.writer.Txn(ctx, store.Txn{Ops: []store.Op{{Key: key, Value: []byte("v")}}})
					if !assert.NoError(t, err) || !assert.True(t, res.Succeeded) {
						return
					}
					rev, err := pair.reader.Revision(ctx)
					if !assert.NoError(t, err) || !assert.GreaterOrEqual(t, rev, res.Revision, "%s: revision read after an acknowledged write", pair.name) {
						return
					}
					kv, err := pair.reader.Get(ctx, key)
					if !assert.NoError(t, err, "%s: get after an acknowledged write", pair.name) ||
						!assert.Equal(t, res.Revision, kv.ModRevision) {
						return
					}
					list, err := pair.reader.List(ctx, fmt.Sprintf("k/%s/%d/", pair.name, g), store.ListOptions{})
					if !assert.NoError(t, err) || !assert.Len(t, list.KVs, i+1, "%s: list after an acknowledged write", pair.name) {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}

// laggingKV answers serializable reads as a member that has made no
// revision after visible visible yet (0: every one): what etcd does between
// sending a write's watch event and ending the write (mvcc's
// watchableStoreTxnWrite.End notifies the watchers first). It counts the
// linearizable reads.
type laggingKV struct {
	clientv3.KV
	visible      atomic.Int64
	linearizable atomic.Int64
}

func (l *laggingKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if !clientv3.OpGet(key, opts...).IsSerializable() {
		l.linearizable.Add(1)
		return l.KV.Get(ctx, key, opts...)
	}
	v := l.visible.Load()
	if v == 0 {
		return l.KV.Get(ctx, key, opts...)
	}
	resp, err := l.KV.Get(ctx, key, append(opts, clientv3.WithRev(v))...)
	if err == nil {
		resp.Header.Revision = v
	}
	return resp, err
}

// A read made on a watch event sees the event's write, on a single member
// too, although etcd delivers the event before its write is visible to
// serializable reads: the create-to-usable test's observer (and WaitExporter)
// read an exporter on its last status change, got the status from before
// it, and waited for a change that never came. Reads that are not behind
// an event stay serializable.
func TestSingleMemberReadsSeeDeliveredEvents(t *testing.T) {
	ctx := context.Background()
	srv, err := etcdembed.Start(ctx, fastConfig(t.TempDir()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	wcli, closeW := srv.InProcessClient()
	t.Cleanup(func() { _ = closeW() })
	writer, err := etcdstore.New(wcli, etcdstore.Config{Prefix: "/lag/", SingleMember: true})
	require.NoError(t, err)
	rcli, closeR := srv.InProcessClient()
	t.Cleanup(func() { _ = closeR() })
	lag := &laggingKV{KV: rcli.KV}
	rcli.KV = lag
	reader, err := etcdstore.New(rcli, etcdstore.Config{Prefix: "/lag/", SingleMember: true})
	require.NoError(t, err)

	first, err := writer.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v1")}}})
	require.NoError(t, err)
	w, err := reader.Watch(ctx, "k", first.Revision+1)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Close() })
	lag.visible.Store(first.Revision)
	second, err := writer.Txn(ctx, store.Txn{Ops: []store.Op{{Key: "k", Value: []byte("v2")}}})
	require.NoError(t, err)
	resp := <-w.Events()
	require.NoError(t, resp.Err)
	require.Equal(t, second.Revision, resp.Revision)

	kv, err := reader.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "v2", string(kv.Value), "a get on the event")
	list, err := reader.List(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.KVs, 1)
	require.Equal(t, "v2", string(list.KVs[0].Value), "a list on the event")
	rev, err := reader.Revision(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, rev, second.Revision, "the revision on the event")

	lag.visible.Store(0)
	before := lag.linearizable.Load()
	kv, err = reader.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "v2", string(kv.Value))
	_, err = reader.Revision(ctx)
	require.NoError(t, err)
	require.Equal(t, before, lag.linearizable.Load(), "reads not behind an event stay serializable")
}
