package agent

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk"
)

// rpcRecorder is a unix-socket proxy in front of an SPDK socket that records
// every request in wire order and how many state-changing requests were
// awaiting their reply at once.
type rpcRecorder struct {
	sock string

	mu          sync.Mutex
	reqs        []recordedRPC
	pending     map[string]bool // ids of state-changing requests awaiting replies
	maxInFlight int
	wg          sync.WaitGroup
}

type recordedRPC struct {
	Method string
	Params map[string]any
}

type wireMsg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params map[string]any  `json:"params"`
}

func startRecorder(t testing.TB, target string) *rpcRecorder {
	t.Helper()
	dir, err := os.MkdirTemp("", "rec")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	r := &rpcRecorder{sock: filepath.Join(dir, "proxy.sock"), pending: map[string]bool{}}
	ln, err := net.Listen("unix", r.sock)
	require.NoError(t, err)
	var conns sync.Map
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			r.wg.Go(func() { r.serve(c, target); conns.Delete(c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		conns.Range(func(k, _ any) bool { _ = k.(net.Conn).Close(); return true })
		r.wg.Wait()
	})
	return r
}

// serve pipes one client connection to a fresh connection to target; when
// either side ends, both close (as SPDK going away would look).
func (r *rpcRecorder) serve(client net.Conn, target string) {
	defer client.Close()
	up, err := net.Dial("unix", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer client.Close()
		sc := bufio.NewScanner(up)
		sc.Buffer(make([]byte, 1<<20), 1<<30)
		for sc.Scan() {
			var m wireMsg
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				r.mu.Lock()
				delete(r.pending, string(m.ID))
				r.mu.Unlock()
			}
			if _, err := client.Write(append(sc.Bytes(), '\n')); err != nil {
				return
			}
		}
	}()
	dec := json.NewDecoder(client)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		var m wireMsg
		_ = json.Unmarshal(raw, &m)
		r.mu.Lock()
		r.reqs = append(r.reqs, recordedRPC{Method: m.Method, Params: m.Params})
		if !spdk.IsReadOnly(m.Method) {
			r.pending[string(m.ID)] = true
			r.maxInFlight = max(r.maxInFlight, len(r.pending))
		}
		r.mu.Unlock()
		if _, err := up.Write(raw); err != nil {
			break
		}
	}
	_ = up.Close()
	<-done
	_, _ = io.Copy(io.Discard, client)
}

// reset forgets what was recorded.
func (r *rpcRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs, r.maxInFlight = nil, 0
}

// requests returns the recorded requests.
func (r *rpcRecorder) requests() []recordedRPC {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedRPC(nil), r.reqs...)
}

// mutations returns the recorded state-changing requests, in order.
func (r *rpcRecorder) mutations() []recordedRPC {
	var out []recordedRPC
	for _, q := range r.requests() {
		if !spdk.IsReadOnly(q.Method) {
			out = append(out, q)
		}
	}
	return out
}

// peakInFlight is the most state-changing requests that awaited a reply at
// once since the last reset.
func (r *rpcRecorder) peakInFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxInFlight
}
