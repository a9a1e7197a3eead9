package spdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func dialTest(t testing.TB, s *testServer, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(context.Background(), s.path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestParseAddress(t *testing.T) {
	for _, tc := range []struct{ in, network string }{
		{"/var/tmp/spdk.sock", "unix"},
		{"./spdk.sock", "unix"},
		{"spdk.sock", "unix"},
		{"/tmp/odd:name.sock", "unix"},
		{"127.0.0.1:5260", "tcp"},
		{"[::1]:5260", "tcp"},
		{"spdk-host:5260", "tcp"},
	} {
		n, a, err := ParseAddress(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.network, n, tc.in)
		require.Equal(t, tc.in, a)
	}
	_, _, err := ParseAddress("")
	require.ErrorIs(t, err, ErrBadRequest)
}

func TestCallEncodesRequestAndDecodesResult(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTest(t, s)
	done := make(chan error, 1)
	var got []Bdev
	go func() {
		var err error
		got, err = c.BdevGetBdevs(context.Background(), BdevGetBdevsParams{Name: "m0"})
		done <- err
	}()
	r := s.next()
	require.Equal(t, "2.0", r.JSONRPC)
	require.Equal(t, "bdev_get_bdevs", r.Method)
	require.NotZero(t, r.idNum(), "id must be a positive integer, got %s", r.ID)
	require.JSONEq(t, `{"name":"m0"}`, string(r.Params))
	r.replyRawResult([]byte(`[{"name":"m0","product_name":"Malloc disk","block_size":4096,"num_blocks":16,` +
		`"driver_specific":{"future":{"x":1}}}]`))
	require.NoError(t, <-done)
	require.Len(t, got, 1)
	require.Equal(t, "m0", got[0].Name)
	require.Equal(t, uint64(65536), got[0].SizeBytes())
	require.Contains(t, got[0].DriverSpecific.Other, "future")

	// No params at all for the zero value.
	go func() { _, err := c.BdevGetBdevs(context.Background(), BdevGetBdevsParams{}); done <- err }()
	r = s.next()
	require.Empty(t, r.Params)
	r.reply([]Bdev{})
	require.NoError(t, <-done)
}

func TestOutOfOrderReplies(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTest(t, s)
	const n = 5
	results := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.BdevMallocCreate(context.Background(),
				BdevMallocCreateParams{Name: fmt.Sprintf("m%d", i), BlockSize: 512, NumBlocks: 8})
		}()
	}
	var reqs []*serverReq
	for range n {
		reqs = append(reqs, s.next())
	}
	for i := len(reqs) - 1; i >= 0; i-- { // answer in reverse order
		var p BdevMallocCreateParams
		require.NoError(t, json.Unmarshal(reqs[i].Params, &p))
		reqs[i].reply("created-" + p.Name)
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, fmt.Sprintf("created-m%d", i), results[i])
	}
	require.EqualValues(t, 1, s.accepted.Load())
}

func TestConcurrentCallersShareOneConnection(t *testing.T) {
	s := newTestServer(t, func(r *serverReq) {
		var p NameParams
		_ = json.Unmarshal(r.Params, &p)
		r.reply([]Bdev{{Name: p.Name}})
	})
	c := dialTest(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				name := fmt.Sprintf("b-%d-%d", g, i)
				got, err := c.BdevGetBdevs(context.Background(), BdevGetBdevsParams{Name: name})
				if err != nil || len(got) != 1 || got[0].Name != name {
					errs <- fmt.Errorf("call %s: %v %v", name, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.EqualValues(t, 1, s.accepted.Load(), "every call must be pipelined on one connection")
}

func TestHungServerHonoursContextAndDropsLateReply(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTest(t, s)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.BdevLvolCreate(ctx, BdevLvolCreateParams{LvsName: "lvs", LvolName: "a", SizeInMiB: new(uint64(4))})
		errc <- err
	}()
	hung := s.next() // never answered in time
	err := <-errc
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, ErrOutcomeUnknown, "a mutation abandoned in flight has an unknown outcome")

	// The late reply to the abandoned id arrives just before the reply to the next call.
	go func() {
		v, err := c.Version(context.Background())
		if err == nil && v.Fields.Major != 24 {
			err = fmt.Errorf("wrong reply: %+v", v)
		}
		errc <- err
	}()
	next := s.next()
	hung.reply("late-uuid")
	echoVersion(next)
	require.NoError(t, <-errc)
	require.EqualValues(t, 1, s.accepted.Load(), "a late reply must not break the connection")
}

func TestReadOnlyTimeoutIsNotOutcomeUnknown(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTest(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.BdevGetBdevs(ctx, BdevGetBdevsParams{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, ErrOutcomeUnknown)
}

func TestDisconnectDuringMutationIsOutcomeUnknownAndNotReplayed(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTest(t, s)
	errc := make(chan error, 1)
	go func() {
		errc <- c.BdevRaidCreate(context.Background(), BdevRaidCreateParams{Name: "r", RaidLevel: "raid0", StripSizeKB: 64, BaseBdevs: []string{"a", "b"}})
	}()
	r := s.next()
	require.Equal(t, "bdev_raid_create", r.Method)
	r.closeConn()
	err := <-errc
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, ErrConnection)

	// The next request the server sees is the next call, on a new connection: no replay.
	go func() { _, err := c.Version(context.Background()); errc <- err }()
	r = s.next()
	require.Equal(t, "spdk_get_version", r.Method)
	echoVersion(r)
	require.NoError(t, <-errc)
	require.EqualValues(t, 2, s.accepted.Load())
}

func TestDisconnectDuringReadIsRetriedOnce(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTest(t, s)
	errc := make(chan error, 1)
	var got []Lvstore
	go func() {
		var err error
		got, err = c.BdevLvolGetLvstores(context.Background(), LvstoreSelector{LvsName: "lvs0"})
		errc <- err
	}()
	first := s.next()
	first.closeConn()
	second := s.next()
	require.Equal(t, "bdev_lvol_get_lvstores", second.Method)
	require.NotSame(t, first.conn, second.conn, "the retry must use a fresh connection")
	second.reply([]Lvstore{{Name: "lvs0", UUID: "u"}})
	require.NoError(t, <-errc)
	require.Equal(t, "lvs0", got[0].Name)

	// Only once: a second drop fails the call.
	go func() { _, err := c.BdevLvolGetLvstores(context.Background(), LvstoreSelector{}); errc <- err }()
	s.next().closeConn()
	s.next().closeConn()
	err := <-errc
	require.ErrorIs(t, err, ErrConnection)
	require.NotErrorIs(t, err, ErrOutcomeUnknown)
}

func TestGarbageFailsInFlightCallsAndReconnects(t *testing.T) {
	for name, garbage := range map[string]string{
		"not json":          "this is not json\n",
		"truncated null id": `{"jsonrpc":"2.0","id":null,"result":"nullid"` + `{"jsonrpc":"2.0","id":1,"result":true}`,
		"top-level array":   "[1,2,3]\n",
	} {
		t.Run(name, func(t *testing.T) {
			s := newTestServer(t, nil)
			c := dialTest(t, s)
			errc := make(chan error, 2)
			go func() { errc <- c.BdevExamine(context.Background(), NameParams{Name: "x"}) }()
			go func() { _, err := c.BdevGetBdevs(context.Background(), BdevGetBdevsParams{Name: "y"}); errc <- err }()
			a, b := s.next(), s.next()
			var mut, read *serverReq = a, b
			if a.Method != "bdev_examine" {
				mut, read = b, a
			}
			mut.writeRaw([]byte(garbage))
			// The read-only call is retried on a new connection; answer it there.
			retry := s.next()
			require.Equal(t, "bdev_get_bdevs", retry.Method)
			require.NotSame(t, read.conn, retry.conn)
			retry.reply([]Bdev{{Name: "y"}})
			errs := []error{<-errc, <-errc}
			var unknown, ok int
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrOutcomeUnknown) && errors.Is(err, ErrConnection):
					unknown++
				default:
					t.Fatalf("unexpected error: %v", err)
				}
			}
			require.Equal(t, 1, ok)
			require.Equal(t, 1, unknown)
		})
	}
}

func TestUnknownIDIsIgnored(t *testing.T) {
	s := newTestServer(t, func(r *serverReq) {
		r.writeRaw([]byte(`{"jsonrpc":"2.0","id":987654,"result":"stray"}` + "\n"))
		r.writeRaw([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}}` + "\n"))
		r.writeRaw([]byte(`{"jsonrpc":"2.0","id":"str","result":1}` + "\n"))
		echoVersion(r)
	})
	c := dialTest(t, s)
	for range 3 {
		v, err := c.Version(context.Background())
		require.NoError(t, err)
		require.True(t, v.AtLeast(24, 1))
	}
	require.EqualValues(t, 1, s.accepted.Load())
}

func TestReconnectAfterRestart(t *testing.T) {
	s := newTestServer(t, echoVersion)
	c := dialTest(t, s)
	_, err := c.Version(context.Background())
	require.NoError(t, err)
	s.restart()
	_, err = c.Version(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, s.accepted.Load())
	require.EqualValues(t, 2, c.Conns(), "Conns counts the replacement connection")
	_, err = c.Version(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, c.Conns(), "a healthy connection is reused, not counted again")

	// A mutation issued right after a restart goes out on a fresh connection too: it was never
	// sent on the dead one, so it is safe to send (once).
	s.restart()
	require.NoError(t, c.BdevMallocDelete(context.Background(), NameParams{Name: "m0"}))
	require.EqualValues(t, 3, s.accepted.Load())
}

func TestCallWhileServerDownFailsThenRecovers(t *testing.T) {
	s := newTestServer(t, echoVersion)
	c := dialTest(t, s)
	require.EqualValues(t, 1, c.Conns())
	s.stop()
	_, err := c.Version(context.Background())
	require.ErrorIs(t, err, ErrConnection)
	require.EqualValues(t, 1, c.Conns(), "a failed dial is not a connection")
	s.listen()
	_, err = c.Version(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 2, c.Conns())
}

func TestClose(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTest(t, s)
	errc := make(chan error, 1)
	go func() { errc <- c.BdevMallocDelete(context.Background(), NameParams{Name: "m"}) }()
	s.next() // in flight, never answered
	require.NoError(t, c.Close())
	err := <-errc
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.NoError(t, c.Close(), "Close is idempotent")
	_, err = c.Version(context.Background())
	require.ErrorIs(t, err, ErrClosed)
}

func TestDialFailure(t *testing.T) {
	_, err := Dial(context.Background(), filepath.Join(t.TempDir(), "missing.sock"))
	require.ErrorIs(t, err, ErrConnection)
	_, err = Dial(context.Background(), "")
	require.ErrorIs(t, err, ErrBadRequest)
}

func TestLazyNewDialsOnFirstCall(t *testing.T) {
	s := newTestServer(t, echoVersion)
	c, err := New(s.path)
	require.NoError(t, err)
	defer c.Close()
	require.EqualValues(t, 0, s.accepted.Load())
	_, err = c.Version(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, s.accepted.Load())
}

func TestRemoteErrorIsTyped(t *testing.T) {
	s := newTestServer(t, func(r *serverReq) { r.replyError(-19, "No such device") })
	c := dialTest(t, s)
	_, err := c.BdevGetBdevs(context.Background(), BdevGetBdevsParams{Name: "nope"})
	require.ErrorIs(t, err, ErrNotFound)
	var se *Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, Error{Method: "bdev_get_bdevs", Code: -19, Message: "No such device"}, *se)
}

func TestBadResultIsReported(t *testing.T) {
	s := newTestServer(t, func(r *serverReq) { r.reply("not-a-list") })
	c := dialTest(t, s)
	_, err := c.BdevGetBdevs(context.Background(), BdevGetBdevsParams{})
	require.ErrorIs(t, err, ErrBadResponse)
}

func TestLvolSizeRules(t *testing.T) {
	var sent atomic.Int64
	s := newTestServer(t, func(r *serverReq) { sent.Add(1); r.reply("uuid") })
	c := dialTest(t, s)
	_, err := c.BdevLvolCreate(context.Background(), BdevLvolCreateParams{
		LvsName: "l", LvolName: "v", SizeInMiB: new(uint64(1)), Size: new(uint64(1 << 20))})
	require.ErrorIs(t, err, ErrBadRequest)
	err = c.BdevLvolResize(context.Background(), BdevLvolResizeParams{Name: "v"})
	require.ErrorIs(t, err, ErrBadRequest)
	uuid, err := c.BdevLvolCreate(context.Background(), BdevLvolCreateParams{LvsName: "l", LvolName: "v", SizeInMiB: new(uint64(0))})
	require.NoError(t, err)
	require.Equal(t, "uuid", uuid)
	require.EqualValues(t, 1, sent.Load(), "refused requests must not reach SPDK")
}

func TestSupportsIsCachedPerConnection(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	s := newTestServer(t, func(r *serverReq) {
		if r.Method == "spdk_get_version" {
			echoVersion(r)
			return
		}
		mu.Lock()
		calls++
		if len(r.Params) != 0 {
			calls += 100 // Supports must list every registered method, not only current ones
		}
		mu.Unlock()
		r.reply([]string{"bdev_get_bdevs", "nvmf_subsystem_listener_set_ana_state"})
	})
	c := dialTest(t, s)
	ok, err := c.Supports(context.Background(), "nvmf_subsystem_listener_set_ana_state")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = c.Supports(context.Background(), "bdev_raid1_create")
	require.NoError(t, err)
	require.False(t, ok)
	mu.Lock()
	require.Equal(t, 1, calls)
	mu.Unlock()

	s.restart()
	_, err = c.Supports(context.Background(), "bdev_get_bdevs") // still cached: no call yet
	require.NoError(t, err)
	_, err = c.Version(context.Background()) // reconnects, which drops the cache
	require.NoError(t, err)
	_, err = c.Supports(context.Background(), "bdev_get_bdevs")
	require.NoError(t, err)
	mu.Lock()
	require.Equal(t, 2, calls) // listed again after the reconnect
	mu.Unlock()
}

func TestMethodsCurrent(t *testing.T) {
	s := newTestServer(t, func(r *serverReq) {
		if string(r.Params) != `{"current":true}` {
			r.replyError(-32602, "want current")
			return
		}
		r.reply([]string{"framework_start_init"})
	})
	c := dialTest(t, s)
	m, err := c.Methods(context.Background(), true)
	require.NoError(t, err)
	require.Equal(t, []string{"framework_start_init"}, m)
}

func TestTraceLogging(t *testing.T) {
	var buf syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &buf})
	s := newTestServer(t, echoVersion)
	c := dialTest(t, s, WithLogger(log), WithDialTimeout(time.Second))
	_, err := c.Version(context.Background())
	require.NoError(t, err)
	out := buf.String()
	require.Contains(t, out, "method=spdk_get_version")
	require.Contains(t, out, "duration=")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEncodeRequest(t *testing.T) {
	got := encodeRequest(7, "bdev_get_bdevs", json.RawMessage(`{"name":"a"}`))
	require.JSONEq(t, `{"jsonrpc":"2.0","method":"bdev_get_bdevs","id":7,"params":{"name":"a"}}`, string(got))
	got = encodeRequest(8, `odd"name`, nil)
	require.JSONEq(t, `{"jsonrpc":"2.0","method":"odd\"name","id":8}`, string(got))
	require.False(t, strings.Contains(string(got), "params"))
}

func TestConcurrentFirstCallsDialOnce(t *testing.T) {
	s := newTestServer(t, echoVersion)
	c, err := New(s.path)
	require.NoError(t, err)
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Version(context.Background())
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, s.accepted.Load())
}

// TestBlockedWriteHonoursContext: an SPDK that stops reading fills the socket buffers; the
// writer and the callers queued behind it still return when their contexts end, and since
// the requests were not written whole they are not reported as outcome-unknown.
func TestBlockedWriteHonoursContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stuck.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc // never read from
		}
	}()
	c, err := Dial(context.Background(), path)
	require.NoError(t, err)
	defer c.Close()
	nc := <-accepted
	defer nc.Close()

	huge := strings.Repeat("x", 8<<20) // far more than the socket buffers hold
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	type result struct {
		huge bool
		err  error
	}
	results := make(chan result, 4)
	for i := range 4 {
		name := "small"
		if i == 0 {
			name = huge
		}
		go func() {
			_, err := c.BdevMallocCreate(ctx, BdevMallocCreateParams{Name: name, BlockSize: 512, NumBlocks: 1})
			results <- result{huge: i == 0, err: err}
		}()
	}
	for range 4 {
		r := <-results
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
		if r.huge { // never written whole, so never executed; small ones may have gone out first
			require.NotErrorIs(t, r.err, ErrOutcomeUnknown)
		}
	}
}

func TestCallTimeoutAppliesWithoutDeadline(t *testing.T) {
	s := newTestServer(t, nil)
	c := dialTest(t, s, WithCallTimeout(30*time.Millisecond))
	_, err := c.BdevGetBdevs(context.Background(), BdevGetBdevsParams{}) // never answered
	require.ErrorIs(t, err, context.DeadlineExceeded)
	s.next()
}

// TestInvalidResultFailsOnlyThatCall: a reply whose result is not JSON, but whose structure
// (brackets, strings, commas) is intact, so that the framing can be trusted, fails its own call with ErrBadResponse (also when the caller ignores the result)
// and leaves the connection, and the calls after it, alone.
func TestInvalidResultFailsOnlyThatCall(t *testing.T) {
	s := newTestServer(t, func(r *serverReq) {
		switch r.Method {
		case "bdev_get_bdevs", "bdev_examine":
			r.writeRaw(frame(r.ID, "result", []byte(`[tru,01,"\x"]`)))
		default:
			echoVersion(r)
		}
	})
	c := dialTest(t, s)
	ctx := context.Background()
	_, err := c.BdevGetBdevs(ctx, BdevGetBdevsParams{})
	require.ErrorIs(t, err, ErrBadResponse)
	require.ErrorIs(t, c.BdevExamine(ctx, NameParams{Name: "x"}), ErrBadResponse)
	_, err = c.SpdkGetVersion(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, s.accepted.Load())
	require.EqualValues(t, 1, c.Conns())
}
