package nvmetcp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	testSub  = "nqn.2016-06.io.spdk:nvmetcp-test"
	testHost = "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"
)

func testOptions(tt *testTarget) Options { return Options{HostNQN: testHost, Dial: tt.dial} }

// connectTest connects to tt and closes both when the test ends.
func connectTest(t testing.TB, tt *testTarget, o Options) *Controller {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Connect(ctx, "target:4420", testSub, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(); tt.shutdown() })
	return c
}

func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

func TestConnectIdentifies(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 4096))
	tt.ana = true
	c := connectTest(t, tt, testOptions(tt))

	info := c.Info()
	require.Equal(t, "TESTSERIAL0001", info.Serial)
	require.Equal(t, "nvmetcp test target", info.Model)
	require.Equal(t, uint16(1), info.CntlID)
	require.Equal(t, "1.4", info.Version)
	require.Equal(t, uint32(128<<10), info.MaxTransferBytes)
	require.Equal(t, uint32(4096), info.InCapsuleBytes)
	require.Equal(t, uint32(128<<10), info.MaxH2CDataBytes)
	require.Equal(t, DefaultQueueDepth, info.QueueDepth)
	require.True(t, info.ANAReporting)
	require.Equal(t, testSub, info.SubNQN)

	nss := c.Namespaces()
	require.Len(t, nss, 1)
	require.Equal(t, uint32(1), nss[0].NSID)
	require.Equal(t, uint32(512), nss[0].BlockSize)
	require.Equal(t, uint64(4096), nss[0].Blocks)
	require.Equal(t, uint64(2<<20), nss[0].SizeBytes())
	require.Equal(t, "6b2d0f31-7a11-4c4e-9a3e-1f605c112233", nss[0].UUID.String())
	require.Equal(t, uint32(1), nss[0].ANAGroupID)
	require.Equal(t, ANAOptimized, c.ANAState(1))

	// The bring-up sequence, as Linux does it.
	ops := tt.opsSeen()
	require.Equal(t, []string{"0:connect", "0:property get", "0:property get", "0:property set", "0:property get",
		"0:identify", "0:set features", "0:asynchronous event request", "0:identify", "0:identify", "0:identify",
		"0:get log page", "1:connect"}, ops)

	_, err := c.Namespace(context.Background(), 2)
	require.ErrorIs(t, err, ErrNoNamespace)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close is idempotent")
	require.ErrorIs(t, c.Err(), ErrClosed)
	err = c.ReadAt(context.Background(), 1, make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrClosed)
}

func TestReadWriteRoundTrip(t *testing.T) {
	// Six writes and six reads of 1, 1, 1, 1, 8 and 3 commands at the default
	// MDTS (128 KiB), after the I/O queue's Connect (in-capsule data too);
	// the I/O queue's counters say how they went.
	cases := []struct {
		name  string
		tune  func(*testTarget)
		check func(t *testing.T, s ControllerStats)
	}{
		{"defaults", func(*testTarget) {}, func(t *testing.T, s ControllerStats) {
			require.Equal(t, ControllerStats{Commands: 1 + 2*(1+1+1+1+8+3), InCapsuleWrites: 1 + 2, R2Ts: 1 + 1 + 8 + 3,
				H2CDataPDUs: 1 + 1 + 8 + 3, C2HDataPDUs: 1 + 1 + 1 + 1 + 8 + 3}, s)
		}},
		{"partial reads", func(tt *testTarget) { tt.writeChunk = 7 }, nil},
		{"multi-PDU C2H without SUCCESS", func(tt *testTarget) { tt.c2hChunk = 1000; tt.noSuccess = true },
			func(t *testing.T, s ControllerStats) {
				require.Equal(t, uint64(1+5+5+132+8*132+2*132+46), s.C2HDataPDUs)
			}},
		{"multi-PDU C2H with SUCCESS", func(tt *testTarget) { tt.c2hChunk = 4096 },
			func(t *testing.T, s ControllerStats) { require.Equal(t, uint64(1+1+2+32+256+75), s.C2HDataPDUs) }},
		{"small MAXH2CDATA and several R2Ts", func(tt *testTarget) { tt.maxH2C = 4096; tt.r2tChunk = 12288 },
			func(t *testing.T, s ControllerStats) {
				require.Equal(t, uint64(1+11+88+26), s.R2Ts)
				require.Equal(t, uint64(2+32+256+75), s.H2CDataPDUs)
			}},
		{"CPDA padding", func(tt *testTarget) { tt.cpda = 7 }, nil},
		{"small MDTS splits", func(tt *testTarget) { tt.mdts = 1 },
			func(t *testing.T, s ControllerStats) { require.Equal(t, uint64(1+2*(1+1+1+16+128+38)), s.Commands) }},
		{"no in-capsule data", func(tt *testTarget) { tt.ioccsz = 4 },
			func(t *testing.T, s ControllerStats) {
				require.Equal(t, uint64(1), s.InCapsuleWrites, "only Connect")
				require.Equal(t, uint64(1+1+1+1+8+3), s.R2Ts)
			}},
	}
	sizes := []struct{ off, n int }{
		{0, 512}, {512, 4096}, {8192, 4096 + 512}, {1 << 20, 128 << 10}, {3 << 20, 1 << 20}, {5<<20 + 512, 300 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			disk := newTestDisk(512, 16384) // 8 MiB
			tt := newTestTarget(testSub, disk)
			tc.tune(tt)
			c := connectTest(t, tt, testOptions(tt))
			ctx := context.Background()
			for i, s := range sizes {
				want := pattern(s.n, uint64(i+1))
				require.NoError(t, c.WriteAt(ctx, 1, want, int64(s.off)), "write %d at %d", s.n, s.off)
				require.Equal(t, want, disk.snapshot(s.off, s.n), "disk after write %d at %d", s.n, s.off)
				got := make([]byte, s.n)
				require.NoError(t, c.ReadAt(ctx, 1, got, int64(s.off)))
				require.Equal(t, want, got, "read %d at %d", s.n, s.off)
			}
			if tc.check != nil {
				tc.check(t, c.Stats())
			}
		})
	}
}

func TestReadWriteOverTCP(t *testing.T) {
	disk := newTestDisk(4096, 1024)
	tt := newTestTarget(testSub, disk)
	addr := tt.listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Connect(ctx, addr, testSub, Options{HostNQN: testHost, QueueDepth: 4})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, 4, c.Info().QueueDepth)

	// More requests than the queue depth, concurrently.
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := pattern(64<<10, uint64(i))
			off := int64(i) * 64 << 10
			if err := c.WriteAt(ctx, 1, want, off); err != nil {
				errs <- err
				return
			}
			got := make([]byte, len(want))
			if err := c.ReadAt(ctx, 1, got, off); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, want) {
				errs <- errors.New("read back other data")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestInvalidRequestsSendNothing(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 64))
	c := connectTest(t, tt, testOptions(tt))
	ctx := context.Background()
	before := len(tt.opsSeen())
	for _, tc := range []struct {
		p   []byte
		off int64
	}{
		{make([]byte, 100), 0},   // not a whole block
		{make([]byte, 512), 100}, // misaligned
		{make([]byte, 512), -512},
		{nil, 0},
		{make([]byte, 1024), 63 * 512}, // beyond the end
	} {
		require.ErrorIs(t, c.WriteAt(ctx, 1, tc.p, tc.off), ErrInvalid)
		require.ErrorIs(t, c.ReadAt(ctx, 1, tc.p, tc.off), ErrInvalid)
	}
	require.ErrorIs(t, c.ReadAt(ctx, 0, make([]byte, 512), 0), ErrInvalid)
	require.Equal(t, before, len(tt.opsSeen()), "nothing was sent")
	require.ErrorIs(t, c.ReadAt(ctx, 7, make([]byte, 512), 0), ErrNoNamespace)
	require.NoError(t, c.ReadAt(ctx, 1, make([]byte, 512), 63*512), "the last block is in range")
}

func TestOptionsValidated(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		addr, sub string
		o         Options
	}{
		{"h:1", testSub, Options{}},
		{"h:1", testSub, Options{HostNQN: strings.Repeat("a", 224)}},
		{"h:1", testSub, Options{HostNQN: "nqn\x00x"}},
		{"h:1", testSub, Options{HostNQN: testHost, QueueDepth: -1}},
		{"h:1", testSub, Options{HostNQN: testHost, QueueDepth: MaxQueueDepth + 1}},
		{"h:1", testSub, Options{HostNQN: testHost, CommandTimeout: -1}},
		{"h:1", "", Options{HostNQN: testHost}},
		{"nohostport", testSub, Options{HostNQN: testHost}},
	} {
		_, err := Connect(ctx, tc.addr, tc.sub, tc.o)
		require.ErrorIs(t, err, ErrInvalid, "%+v", tc)
	}
}

func TestHostID(t *testing.T) {
	id := HostIDFromNQN(testHost)
	require.Equal(t, "1b4e28ba-2fa1-11d2-883f-0016d3cca427", UUID(id).String())
	a, b := HostIDFromNQN("nqn.2016-06.io.spdk:host1"), HostIDFromNQN("nqn.2016-06.io.spdk:host2")
	require.NotEqual(t, a, b)
	require.Equal(t, a, HostIDFromNQN("nqn.2016-06.io.spdk:host1"), "deterministic")
	require.Equal(t, byte(0x50), a[6]&0xf0, "version 5")

	var got [16]byte
	tt := newTestTarget(testSub, newTestDisk(512, 8))
	tt.hook = func(tc *tconn, c *tcmd) bool {
		if c.opc == opcFabrics && c.sqe[4] == fctConnect {
			copy(got[:], c.data[:16])
		}
		return false
	}
	connectTest(t, tt, testOptions(tt))
	require.Equal(t, id, got, "Connect sends the derived host ID")
}

func TestConnectRefusedHost(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 8))
	tt.hosts = []string{"nqn.2016-06.io.spdk:someone-else"}
	defer tt.shutdown()
	_, err := Connect(context.Background(), "target:4420", testSub, testOptions(tt))
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, uint8(SCTCommandSpecific), se.SCT)
	require.Equal(t, uint8(SCConnectInvalidHost), se.SC)
	require.Contains(t, err.Error(), "host not allowed")
	require.True(t, IsCommandError(err))
	require.False(t, IsTransportError(err))
	require.False(t, IsPathError(err))

	_, err = Connect(context.Background(), "target:4420", testSub+"x", Options{HostNQN: testHost, Dial: tt.dial})
	require.ErrorAs(t, err, &se)
	require.Equal(t, uint8(SCConnectInvalidParam), se.SC)
}

func TestStatusErrorKeepsTheController(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 64))
	var fail sync.Map
	tt.hook = func(tc *tconn, c *tcmd) bool {
		if tc.qid == 1 && c.opc == opcWrite {
			if v, ok := fail.Load("write"); ok {
				_ = tc.send(respPDU(c.cid, SCTPath, v.(uint8), 0, 0)) // ANA inaccessible, say
				return true
			}
		}
		return false
	}
	c := connectTest(t, tt, testOptions(tt))
	ctx := context.Background()
	fail.Store("write", uint8(SCANAInaccessible))
	err := c.WriteAt(ctx, 1, make([]byte, 512), 0)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, StatusError{SCT: SCTPath, SC: SCANAInaccessible, Op: "write"}, *se)
	require.True(t, IsPathError(err))
	require.False(t, IsTransportError(err))
	require.False(t, IsCommandError(err))
	require.Contains(t, err.Error(), "asymmetric access inaccessible")
	// An R2T write fails the same way (the status replaces the R2T).
	require.ErrorIs(t, c.WriteAt(ctx, 1, make([]byte, 16<<10), 0), ErrPath)

	// The controller still works; an out-of-range status from the target is
	// a command error.
	fail.Delete("write")
	require.NoError(t, c.WriteAt(ctx, 1, make([]byte, 512), 0))
	require.NoError(t, c.Err())
	tt.disk.mu.Lock()
	tt.disk.data = tt.disk.data[:512] // the namespace shrank under us
	tt.disk.mu.Unlock()
	err = c.ReadAt(ctx, 1, make([]byte, 512), 512)
	require.ErrorAs(t, err, &se)
	require.Equal(t, uint8(SCLBAOutOfRange), se.SC)
	require.True(t, IsCommandError(err))
	require.Contains(t, err.Error(), "LBA out of range")
}

func TestTargetClosesMidCommand(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 1024))
	arrived := make(chan *tconn, 8)
	tt.hook = func(tc *tconn, c *tcmd) bool {
		if tc.qid == 1 && c.opc == opcRead {
			arrived <- tc // swallow it; the test closes the connection
			return true
		}
		return false
	}
	c := connectTest(t, tt, testOptions(tt))
	ctx := context.Background()
	errs := make(chan error, 4)
	bufs := make([][]byte, 4)
	for i := range bufs {
		bufs[i] = make([]byte, 4096)
		go func() { errs <- c.ReadAt(ctx, 1, bufs[i], 0) }()
	}
	var tc *tconn
	for range bufs {
		tc = <-arrived
	}
	_ = tc.conn.Close() // the I/O queue's connection, with four reads in flight
	for range bufs {
		err := <-errs
		require.ErrorIs(t, err, ErrTransport)
		require.False(t, IsPathError(err))
		require.False(t, IsCommandError(err))
		require.Contains(t, err.Error(), "connection closed by the target")
	}
	<-c.Done()
	require.ErrorIs(t, c.Err(), ErrTransport)
	require.ErrorIs(t, c.WriteAt(ctx, 1, make([]byte, 512), 0), ErrTransport, "a failed controller fails at once")
}

func TestCommandTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt := newTestTarget(testSub, newTestDisk(512, 64))
		tt.hook = func(tc *tconn, c *tcmd) bool { return tc.qid == 1 && c.opc == opcRead } // never answered
		o := testOptions(tt)
		o.CommandTimeout = 3 * time.Second
		c := connectTest(t, tt, o)
		start := time.Now()
		err := c.ReadAt(context.Background(), 1, make([]byte, 512), 0)
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorIs(t, err, ErrTransport)
		require.Equal(t, 3*time.Second, time.Since(start))
		<-c.Done()
	})
}

func TestConnectTimesOutOnASilentTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A target that accepts the connection and never answers ICReq.
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			a, b := net.Pipe()
			go func() { _, _ = io.Copy(io.Discard, b) }()
			return a, nil
		}
		start := time.Now()
		_, err := Connect(context.Background(), "target:4420", testSub,
			Options{HostNQN: testHost, Dial: dial, CommandTimeout: 4 * time.Second})
		require.ErrorIs(t, err, ErrTransport)
		require.ErrorIs(t, err, ErrTimeout)
		require.Equal(t, 4*time.Second, time.Since(start))
	})
}

func TestKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt := newTestTarget(testSub, newTestDisk(512, 64))
		o := testOptions(tt)
		o.KeepAlive = 4 * time.Second
		c := connectTest(t, tt, o)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		require.Equal(t, 4, tt.keepAliveCount(), "one every KATO/2")
		require.NoError(t, c.Err())
	})
}

func TestKeepAliveUnanswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tt := newTestTarget(testSub, newTestDisk(512, 64))
		tt.hook = func(tc *tconn, c *tcmd) bool { return tc.qid == 0 && c.opc == opcKeepAlive }
		o := testOptions(tt)
		o.KeepAlive = 4 * time.Second
		o.CommandTimeout = 5 * time.Second
		c := connectTest(t, tt, o)
		start := time.Now()
		<-c.Done()
		require.Equal(t, 7*time.Second, time.Since(start), "first keep alive after 2 s, timed out 5 s later")
		require.ErrorIs(t, c.Err(), ErrTimeout)
		require.Contains(t, c.Err().Error(), "keep alive")
	})
}

func TestCanceledWriteStillSendsItsData(t *testing.T) {
	disk := newTestDisk(512, 256)
	tt := newTestTarget(testSub, disk)
	held := make(chan func(), 1)
	var hold atomic.Bool
	hold.Store(true)
	tt.hook = func(tc *tconn, c *tcmd) bool {
		if hold.Load() && tc.qid == 1 && c.opc == opcWrite && c.data == nil {
			// Hold the R2T until the test releases it.
			held <- func() { require.NoError(t, tc.ioCmd(c)) }
			return true
		}
		return false
	}
	c := connectTest(t, tt, testOptions(tt))
	ctx, cancel := context.WithCancel(context.Background())
	p := pattern(64<<10, 9)
	want := bytes.Clone(p)
	errc := make(chan error)
	go func() { errc <- c.WriteAt(ctx, 1, p, 0) }()
	release := <-held
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	clear(p) // the caller owns its buffer again
	hold.Store(false)
	release()
	require.Eventually(t, func() bool { return bytes.Equal(disk.snapshot(0, len(want)), want) },
		time.Minute, 5*time.Millisecond, "the target fetched the data of the abandoned write")
	// The command ID was released: the queue still takes a full depth.
	for i := range c.Info().QueueDepth + 1 {
		require.NoError(t, c.WriteAt(context.Background(), 1, make([]byte, 512), int64(i)*512))
	}
}

func TestCanceledReadLeavesTheBufferAlone(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 256))
	held := make(chan func(), 1)
	var hold atomic.Bool
	tt.hook = func(tc *tconn, c *tcmd) bool {
		if hold.Load() && tc.qid == 1 && c.opc == opcRead {
			held <- func() { require.NoError(t, tc.ioCmd(c)) }
			return true
		}
		return false
	}
	c := connectTest(t, tt, testOptions(tt))
	require.NoError(t, c.WriteAt(context.Background(), 1, pattern(4096, 3), 0))
	hold.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	p := make([]byte, 4096)
	errc := make(chan error)
	go func() { errc <- c.ReadAt(ctx, 1, p, 0) }()
	release := <-held
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	hold.Store(false)
	release() // the data arrives after the caller gave up
	require.NoError(t, c.WriteAt(context.Background(), 1, make([]byte, 512), 0), "the queue still works")
	require.Equal(t, make([]byte, 4096), p, "nothing was written into the abandoned buffer")
}

func TestANAChangeNotice(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 64))
	tt.ana = true
	c := connectTest(t, tt, testOptions(tt))
	require.Equal(t, ANAOptimized, c.ANAState(1))
	tt.setANA(ANAInaccessible, true)
	require.Eventually(t, func() bool { return c.ANAState(1) == ANAInaccessible }, time.Minute, 5*time.Millisecond)
	tt.setANA(ANANonOptimized, true) // the host posted a new AER
	require.Eventually(t, func() bool { return c.ANAState(1) == ANANonOptimized }, time.Minute, 5*time.Millisecond)
	tt.setANA(ANAChange, false)
	require.NoError(t, c.RefreshANA(context.Background()))
	require.Equal(t, ANAChange, c.ANAState(1))
	require.Equal(t, "change", c.ANAState(1).String())
}

func TestProtocolViolations(t *testing.T) {
	cases := []struct {
		name string
		send func(tc *tconn, c *tcmd) error
		want string
	}{
		{"response for a command not in flight", func(tc *tconn, c *tcmd) error {
			return tc.respond(c.cid+100, 0, 0, 0)
		}, "not in flight"},
		{"C2H beyond the buffer", func(tc *tconn, c *tcmd) error {
			return tc.send(c2hPDU(c.cid, 0, make([]byte, 1024), flagLast|flagSuccess))
		}, "beyond"},
		{"C2H out of order", func(tc *tconn, c *tcmd) error {
			return tc.send(c2hPDU(c.cid, 256, make([]byte, 256), flagLast|flagSuccess))
		}, "offset 256"},
		{"SUCCESS without LAST_PDU", func(tc *tconn, c *tcmd) error {
			return tc.send(c2hPDU(c.cid, 0, make([]byte, 512), flagSuccess))
		}, "SUCCESS but not LAST_PDU"},
		{"success with data missing", func(tc *tconn, c *tcmd) error {
			if err := tc.send(c2hPDU(c.cid, 0, make([]byte, 256), 0)); err != nil {
				return err
			}
			return tc.respond(c.cid, 0, 0, 0)
		}, "256 of 512 bytes"},
		{"R2T for a read", func(tc *tconn, c *tcmd) error {
			return tc.send(r2tPDU(c.cid, 1, 0, 512))
		}, "has no data to fetch"},
		{"digest flag", func(tc *tconn, c *tcmd) error {
			b := respPDU(c.cid, 0, 0, 0, 0)
			b[1] = flagHDGST
			return tc.send(b)
		}, "digests"},
		{"ICResp mid-stream", func(tc *tconn, c *tcmd) error {
			b := make([]byte, icLen)
			header{typ: pduICResp, hlen: icLen, plen: icLen}.put(b)
			return tc.send(b)
		}, "unexpected ICResp"},
		{"short response", func(tc *tconn, c *tcmd) error {
			b := respPDU(c.cid, 0, 0, 0, 0)
			b[2], b[4] = 16, 16
			return tc.send(b[:16])
		}, "CapsuleResp hlen 16"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tt := newTestTarget(testSub, newTestDisk(512, 64))
			gotTerm := make(chan byte, 1)
			tt.hook = func(q *tconn, c *tcmd) bool {
				if q.qid == 1 && c.opc == opcRead {
					require.NoError(t, tc.send(q, c))
					// The host answers with an H2CTermReq before it closes.
					b := make([]byte, termMaxLen)
					if _, err := io.ReadFull(q.br, b[:chLen]); err == nil {
						h := parseHeader(b)
						if h.plen >= chLen && h.plen <= termMaxLen {
							_, _ = io.ReadFull(q.br, b[chLen:h.plen])
						}
						gotTerm <- b[0]
					}
					return true
				}
				return false
			}
			c := connectTest(t, tt, testOptions(tt))
			err := c.ReadAt(context.Background(), 1, make([]byte, 512), 0)
			require.ErrorIs(t, err, ErrProtocol)
			require.ErrorIs(t, err, ErrTransport)
			require.Contains(t, err.Error(), tc.want)
			require.Equal(t, byte(pduH2CTermReq), <-gotTerm)
			<-c.Done()
		})
	}
}

func TestTargetTermReq(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 64))
	tt.hook = func(q *tconn, c *tcmd) bool {
		if q.qid == 1 && c.opc == opcWrite {
			q.terminate(errors.New("bad"))
			return true
		}
		return false
	}
	c := connectTest(t, tt, testOptions(tt))
	err := c.WriteAt(context.Background(), 1, make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrTransport)
	require.Contains(t, err.Error(), "target terminated the connection: invalid PDU header field")
}

func TestStatusErrorText(t *testing.T) {
	for _, tc := range []struct {
		e    StatusError
		want string
	}{
		{StatusError{SCT: 0, SC: 0x80, Op: "read"}, "nvmetcp: read: LBA out of range (SCT 0 SC 0x80)"},
		{StatusError{SCT: 3, SC: 0x03, DNR: true, Op: "write"}, "nvmetcp: write: asymmetric access transition (SCT 3 SC 0x03, DNR)"},
		{StatusError{SCT: 1, SC: 0x84, Op: "connect"}, "nvmetcp: connect: connect refused: host not allowed (invalid host) (SCT 1 SC 0x84)"},
		{StatusError{SCT: 1, SC: 0x84, Op: "write"}, "nvmetcp: write: command specific status (SCT 1 SC 0x84)"},
		{StatusError{SCT: 2, SC: 0x81, More: true, Op: "read"}, "nvmetcp: read: unrecovered read error (SCT 2 SC 0x81, more)"},
		{StatusError{SCT: 7, SC: 0x01, Op: "read"}, "nvmetcp: read: vendor specific status (SCT 7 SC 0x01)"},
	} {
		require.Equal(t, tc.want, tc.e.Error())
	}
	cpl := completion{status: (0x02 | 3<<8 | 1<<14) << 1}
	err := cpl.statusError("read")
	require.Equal(t, &StatusError{SCT: 3, SC: 2, DNR: true, Op: "read"}, err)
	require.NoError(t, completion{status: 1}.statusError("read"), "the phase bit is no status")
}

// A namespace that grows (SPDK: its bdev was resized) is identified again
// on the Namespace Attribute Changed notice: Namespace reports the new
// size on the connection the host already has, and I/O past the old end
// works.
func TestNamespaceAttributeNotice(t *testing.T) {
	tt := newTestTarget(testSub, newTestDisk(512, 64))
	tt.ana = true // events are posted to controllers that report ANA (every VDA export)
	c := connectTest(t, tt, testOptions(tt))
	ni, err := c.Namespace(context.Background(), 1)
	require.NoError(t, err)
	require.EqualValues(t, 64, ni.Blocks)
	tt.growDisk(128)
	require.Eventually(t, func() bool {
		ni, err := c.Namespace(context.Background(), 1)
		return err == nil && ni.Blocks == 128
	}, time.Minute, 5*time.Millisecond)
	require.NoError(t, c.WriteAt(context.Background(), 1, make([]byte, 512), 127*512))
	tt.growDisk(256) // the host posted a new AER
	require.Eventually(t, func() bool {
		ni, err := c.Namespace(context.Background(), 1)
		return err == nil && ni.Blocks == 256
	}, time.Minute, 5*time.Millisecond)
}
