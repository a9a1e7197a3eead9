package spdktest

import (
	"encoding/json"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// phase masks: SPDK registers each method for STARTUP, RUNTIME or both.
const (
	phaseStartup = 1 << iota
	phaseRuntime
	phaseBoth = phaseStartup | phaseRuntime
)

const (
	msgAfterInit  = "Method may only be called after framework is initialized using framework_start_init RPC."
	msgBeforeInit = "Method may only be called before framework is initialized. Use --wait-for-rpc command line parameter and then issue this RPC before the framework_start_init RPC."
)

// handlerFunc runs one method with the instance state locked (s.mu held).
// A method that SPDK completes asynchronously returns an async as its
// result: the rest of the method, run without the lock.
type handlerFunc func(s *state, params json.RawMessage) (any, *Error)

// async is the part of a method that SPDK runs in the background before it
// replies (an NVMe-oF connect, waiting for examines or for a bdev): SPDK's
// JSON-RPC server hands every request it reads to its method at once and
// queues each reply when its method completes, so the requests after an
// asynchronous one on the same connection are answered meanwhile, and their
// replies may come first. It runs without the state lock.
type async func() (any, *Error)

type method struct {
	phase int
	fn    handlerFunc
	// unlocked handlers manage s.mu themselves because they block or do I/O.
	unlocked bool
}

// handlers is the method table, filled by the init functions of the files
// implementing each area.
var handlers = map[string]method{}

func register(name string, phase int, fn handlerFunc) {
	handlers[name] = method{phase: phase, fn: fn}
}

func registerUnlocked(name string, phase int, fn handlerFunc) {
	handlers[name] = method{phase: phase, fn: fn, unlocked: true}
}

// instance is one run of the fake process between start and crash/kill.
type instance struct {
	t    *Target
	ln   net.Listener
	log  hclog.Logger
	done chan struct{} // closed by stop
	wg   sync.WaitGroup
	st   *state

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	once   sync.Once
}

func newInstance(t *Target, ln net.Listener, waitForRPC bool) *instance {
	in := &instance{
		t:     t,
		ln:    ln,
		log:   t.log,
		done:  make(chan struct{}),
		conns: map[net.Conn]struct{}{},
	}
	in.st = newState(in, waitForRPC)
	return in
}

func (in *instance) acceptLoop() {
	defer in.wg.Done()
	for {
		c, err := in.ln.Accept()
		if err != nil {
			return
		}
		in.connMu.Lock()
		select {
		case <-in.done:
			in.connMu.Unlock()
			_ = c.Close()
			return
		default:
		}
		in.conns[c] = struct{}{}
		in.wg.Add(1)
		in.connMu.Unlock()
		go func() {
			defer in.wg.Done()
			in.serveConn(c)
			in.connMu.Lock()
			delete(in.conns, c)
			in.connMu.Unlock()
		}()
	}
}

// stop closes the socket, every connection and the state's background work,
// and waits for the instance's goroutines. Safe to call more than once.
func (in *instance) stop() {
	in.once.Do(func() {
		in.connMu.Lock()
		close(in.done)
		_ = in.ln.Close()
		for c := range in.conns {
			_ = c.Close()
		}
		in.connMu.Unlock()
		in.st.shutdown()
		in.wg.Wait()
	})
}

// call dispatches a parsed request: method lookup, phase check, handler.
func (in *instance) call(req *request) (result any, rerr *Error) {
	m, ok := handlers[req.method]
	if !ok {
		return nil, rpcErr(codeMethodNotFound, "Method not found")
	}
	s := in.st
	s.mu.Lock()
	running := s.initialized
	s.mu.Unlock()
	if running && m.phase&phaseRuntime == 0 {
		return nil, rpcErr(-1, msgBeforeInit)
	}
	if !running && m.phase&phaseStartup == 0 {
		return nil, rpcErr(-1, msgAfterInit)
	}
	defer func() {
		if r := recover(); r != nil {
			in.log.Error("handler panic", "method", req.method, "panic", r)
			result, rerr = nil, rpcErr(codeInternalError, "Internal error")
		}
	}()
	if m.unlocked {
		return m.fn(s, req.params)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.fn(s, req.params)
}

// complete runs the asynchronous rest of req's method.
func (in *instance) complete(req *request, rest async) (result any, rerr *Error) {
	defer func() {
		if r := recover(); r != nil {
			in.log.Error("handler panic", "method", req.method, "panic", r)
			result, rerr = nil, rpcErr(codeInternalError, "Internal error")
		}
	}()
	return rest()
}

// Fault changes how the target answers one method. Zero fields do nothing.
type Fault struct {
	// Latency delays the request before it runs, and the requests after it
	// on the same connection with it (a slow reactor).
	Latency time.Duration
	// Error, when set, is sent instead of running the method.
	Error *Error
	// Hang makes the request never answer (and block later requests on the
	// same connection, as a stuck SPDK reactor would) until the target
	// crashes or closes. The method does not run.
	Hang bool
	// DropReply runs the method, then closes the connection without sending
	// the reply: a partial effect the caller cannot observe.
	DropReply bool
	// Times limits the fault to the next Times requests; 0 means forever.
	Times int
}

// apply waits out the latency or hang. It returns false if the instance
// stopped meanwhile (the connection is then gone).
func (f *Fault) apply(done <-chan struct{}) bool {
	if f.Hang {
		<-done
		return false
	}
	if f.Latency > 0 {
		tm := time.NewTimer(f.Latency)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-done:
			return false
		}
	}
	return true
}

// Inject adds a fault for method ("*" matches every method). Faults apply in
// the order they were injected; a fault with Times runs out after that many
// requests.
func (t *Target) Inject(method string, f Fault) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fc := f
	t.faults[method] = append(t.faults[method], &fc)
	t.faulty.Store(true)
}

// faultsArmed says whether some fault may still apply (also once the
// injected ones ran out, until ClearFaults): one atomic load per request,
// not t.mu.
func (t *Target) faultsArmed() bool { return t.faulty.Load() }

// ClearFaults removes every injected fault.
func (t *Target) ClearFaults() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = map[string][]*Fault{}
	t.faulty.Store(false)
}

func (t *Target) takeFault(method string) (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, key := range []string{method, "*"} {
		list := t.faults[key]
		if len(list) == 0 {
			continue
		}
		f := list[0]
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				t.faults[key] = list[1:]
			}
		}
		return *f, true
	}
	return Fault{}, false
}
