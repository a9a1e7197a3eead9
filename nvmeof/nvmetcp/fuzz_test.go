package nvmetcp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fuzzSession is what the host does against a target in the fuzz tests: a
// connect, a multi-PDU read, an R2T write and an in-capsule write.
func fuzzSession(ctx context.Context, o Options) {
	c, err := Connect(ctx, "target:4420", testSub, o)
	if err != nil {
		return
	}
	buf := make([]byte, 8192)
	_ = c.ReadAt(ctx, 1, buf, 0)
	_ = c.WriteAt(ctx, 1, buf, 4096)
	_ = c.WriteAt(ctx, 1, buf[:512], 0)
	_ = c.Close()
}

// encodeScript frames chunks as the fuzz input: a 2-byte length, then the
// bytes, for each chunk.
func encodeScript(chunks [][]byte) []byte {
	var b []byte
	for _, c := range chunks {
		if len(c) == 0 {
			b = binary.LittleEndian.AppendUint16(b, 0)
		}
		for len(c) > 0 {
			n := min(len(c), 0xffff)
			b = binary.LittleEndian.AppendUint16(b, uint16(n))
			b = append(b, c[:n]...)
			c = c[n:]
		}
	}
	return b
}

// recordSeeds runs fuzzSession against the scripted target and returns what
// the target sent on each connection.
func recordSeeds(tb testing.TB, tune func(*testTarget)) (admin, io []byte) {
	tt := newTestTarget(testSub, newTestDisk(512, 64))
	tt.ana, tt.record = true, true
	tune(tt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fuzzSession(ctx, Options{HostNQN: testHost, Dial: tt.dial})
	tt.shutdown()
	if len(tt.recordings) != 2 {
		tb.Fatalf("recorded %d connections", len(tt.recordings))
	}
	return encodeScript(tt.recordings[0]), encodeScript(tt.recordings[1])
}

// replay plays target: after each PDU the host sends, it writes the next
// chunk of script; then it reads whatever the host sends until the host
// closes the connection.
func replay(c net.Conn, script []byte) {
	defer c.Close()
	defer func() { _, _ = io.Copy(io.Discard, c) }()
	br := bufio.NewReader(c)
	hdr := make([]byte, chLen)
	for len(script) > 0 {
		if _, err := io.ReadFull(br, hdr); err != nil {
			return
		}
		plen := binary.LittleEndian.Uint32(hdr[4:])
		if plen < chLen || plen > 1<<24 {
			return
		}
		if _, err := br.Discard(int(plen - chLen)); err != nil {
			return
		}
		n := len(script)
		if n >= 2 {
			n, script = int(binary.LittleEndian.Uint16(script)), script[2:]
		}
		n = min(n, len(script))
		if _, err := c.Write(script[:n]); err != nil {
			return
		}
		script = script[n:]
	}
}

// FuzzTargetStream feeds the host arbitrary bytes from the target on both
// connections. It must neither panic nor hang: inside the synctest bubble a
// host waiting forever is a deadlock that fails the test, and time moves
// only when every goroutine waits, so command timeouts cost nothing.
func FuzzTargetStream(f *testing.F) {
	for _, tune := range []func(*testTarget){
		func(*testTarget) {},
		func(tt *testTarget) { tt.c2hChunk, tt.noSuccess, tt.maxH2C = 1024, true, 4096 },
		func(tt *testTarget) { tt.cpda, tt.ioccsz = 3, 4 },
	} {
		admin, ioq := recordSeeds(f, tune)
		f.Add(admin, ioq)
	}
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, admin, ioq []byte) {
		synctest.Test(t, func(t *testing.T) {
			scripts := [][]byte{admin, ioq}
			var n atomic.Int32
			dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
				i := n.Add(1) - 1
				if int(i) >= len(scripts) {
					return nil, errors.New("no more connections")
				}
				a, b := net.Pipe()
				go replay(b, scripts[i])
				return a, nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			fuzzSession(ctx, Options{HostNQN: testHost, Dial: dial, CommandTimeout: time.Second})
		})
	})
}

// TestReplayedSessionSucceeds checks the fuzz seeds are meaningful: the
// recorded session replays to a working controller.
func TestReplayedSessionSucceeds(t *testing.T) {
	admin, ioq := recordSeeds(t, func(*testTarget) {})
	synctest.Test(t, func(t *testing.T) {
		scripts := [][]byte{admin, ioq}
		var n atomic.Int32
		o := Options{HostNQN: testHost, CommandTimeout: time.Second, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			a, b := net.Pipe()
			go replay(b, scripts[n.Add(1)-1])
			return a, nil
		}}
		c, err := Connect(context.Background(), "target:4420", testSub, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.ReadAt(context.Background(), 1, make([]byte, 8192), 0); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteAt(context.Background(), 1, make([]byte, 8192), 4096); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParse runs the parsers of identify data and log pages on anything.
func FuzzParse(f *testing.F) {
	tt := newTestTarget(testSub, newTestDisk(512, 64))
	tt.ana = true
	f.Add(tt.identify(cnsController, 0, 1))
	f.Add(tt.identify(cnsNamespace, 1, 1))
	f.Add(tt.identify(cnsNSDescriptors, 1, 1))
	f.Add(tt.anaLog())
	f.Fuzz(func(t *testing.T, b []byte) {
		page := make([]byte, 4096)
		copy(page, b)
		var ci ControllerInfo
		identifyController(page, &ci)
		ni, _ := identifyNamespace(page, 1)
		namespaceDescriptors(b, &ni)
		activeNamespaces(b)
		if l, err := parseANALog(b); err == nil && len(l.groups) > len(b)/32 {
			t.Fatalf("%d groups from %d bytes", len(l.groups), len(b))
		}
	})
}
