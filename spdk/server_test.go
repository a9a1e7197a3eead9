package spdk

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// testServer is a minimal JSON-RPC server on a unix socket, standing in for SPDK. Each decoded
// request is either answered by handler (when set) or queued on reqs for the test to answer.
type testServer struct {
	t       testing.TB
	path    string
	ln      net.Listener
	handler func(r *serverReq)
	reqs    chan *serverReq

	accepted atomic.Int64
	mu       sync.Mutex
	conns    []*serverConn
	// stops counts stop calls: a connection accepted by a listener that
	// was stopped meanwhile is closed, not served (stop would wait for it).
	stops int
	wg    sync.WaitGroup
}

type serverConn struct {
	nc  net.Conn
	wmu sync.Mutex
}

type serverReq struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	ID      json.RawMessage `json:"id"`
	Params  json.RawMessage `json:"params"`
	conn    *serverConn
}

func newTestServer(t testing.TB, handler func(r *serverReq)) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spdk.sock")
	s := &testServer{t: t, path: path, handler: handler, reqs: make(chan *serverReq, 1024)}
	s.listen()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) listen() {
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		s.t.Fatalf("listen: %v", err)
	}
	s.ln = ln
	s.mu.Lock()
	stops := s.stops
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptLoop(ln, stops)
}

func (s *testServer) acceptLoop(ln net.Listener, stops int) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.stops != stops {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.accepted.Add(1)
		sc := &serverConn{nc: nc}
		s.conns = append(s.conns, sc)
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(sc)
	}
}

func (s *testServer) serve(sc *serverConn) {
	defer s.wg.Done()
	dec := json.NewDecoder(sc.nc)
	for {
		r := &serverReq{conn: sc}
		if err := dec.Decode(r); err != nil {
			_ = sc.nc.Close()
			return
		}
		if s.handler != nil {
			s.handler(r)
		} else {
			s.reqs <- r
		}
	}
}

// dropAll closes every accepted connection (as a crashing SPDK would).
func (s *testServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.nc.Close()
	}
	s.conns = nil
}

// stop closes the listener and every connection and waits for the server goroutines.
func (s *testServer) stop() {
	_ = s.ln.Close()
	s.mu.Lock()
	s.stops++
	s.mu.Unlock()
	s.dropAll()
	s.wg.Wait()
	_ = os.Remove(s.path)
}

// restart simulates SPDK restarting on the same socket path.
func (s *testServer) restart() {
	s.stop()
	s.listen()
}

func (r *serverReq) idNum() uint64 {
	n, err := strconv.ParseUint(string(r.ID), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (r *serverReq) writeRaw(b []byte) {
	r.conn.wmu.Lock()
	defer r.conn.wmu.Unlock()
	_, _ = r.conn.nc.Write(b)
}

// reply answers with result, in SPDK's key order and framing.
func (r *serverReq) reply(result any) {
	b, err := json.Marshal(result)
	if err != nil {
		panic(err)
	}
	r.replyRawResult(b)
}

func (r *serverReq) replyRawResult(result []byte) {
	r.writeRaw(frame(r.ID, "result", result))
}

func (r *serverReq) replyError(code int, msg string) {
	b, _ := json.Marshal(wireError{Code: code, Message: msg})
	r.writeRaw(frame(r.ID, "error", b))
}

func frame(id json.RawMessage, key string, body []byte) []byte {
	out := []byte(`{"jsonrpc":"2.0","id":`)
	out = append(out, id...)
	out = append(out, `,"`+key+`":`...)
	out = append(out, body...)
	return append(out, "}\n"...)
}

func (r *serverReq) closeConn() { _ = r.conn.nc.Close() }

// next returns the next queued request.
func (s *testServer) next() *serverReq {
	s.t.Helper()
	r, ok := <-s.reqs
	if !ok {
		s.t.Fatal("server closed")
	}
	return r
}

// echoVersion answers every request with a fixed spdk_get_version result.
func echoVersion(r *serverReq) {
	r.reply(Version{Version: "SPDK v24.01", Fields: VersionFields{Major: 24, Minor: 1}})
}
