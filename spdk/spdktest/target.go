package spdktest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// Sentinel errors of the package.
var (
	ErrClosed  = errors.New("spdktest: target closed")
	ErrRunning = errors.New("spdktest: target is running")
	ErrConfig  = errors.New("spdktest: invalid config")
)

// DefaultExamineDelay is how long bdev_examine takes to find an lvstore by
// default: real SPDK answered -19 for about two polls after bdev_examine.
const DefaultExamineDelay = 2 * time.Millisecond

// Config configures a Target.
type Config struct {
	// SockPath is the unix socket to serve JSON-RPC on (spdk_tgt -r). Required.
	SockPath string
	// WaitForRPC starts in the STARTUP phase, as spdk_tgt --wait-for-rpc does:
	// only start-up methods work until framework_start_init.
	WaitForRPC bool
	// ExamineDelay is how long after bdev_examine the lvstore appears. Zero
	// means DefaultExamineDelay; examine is asynchronous whatever the value.
	ExamineDelay time.Duration
	// NVMeDevices are the local NVMe SSDs on the target's PCIe bus, for
	// bdev_nvme_attach_controller with trtype PCIe. Their bytes outlive
	// Crash and Restart (and the process, when file-backed).
	NVMeDevices []NVMeDevice
	// Reserved are TCP ports held for the target's NVMe-oF listeners (see
	// package reserve and Target.Reserve). A listener added on one of their
	// addresses (nvmf_subsystem_add_listener) serves on the reservation
	// instead of binding the port: a test can hand the address to an agent
	// before anything listens, and no other process can take the port in
	// between, nor while the target is crashed (connections are refused
	// then, as by a dead spdk_tgt) or the listener removed. The caller
	// owns them: they outlive Close, so a new Target (a restarted node)
	// can serve on them again.
	Reserved []*reserve.Port
	// Logger receives the target's logs; nil means silent.
	Logger hclog.Logger
}

// DefaultConfig returns a Config with the defaults filled in, except SockPath.
func DefaultConfig() Config {
	return Config{ExamineDelay: DefaultExamineDelay}
}

// Target is one fake spdk_tgt process: a JSON-RPC server on a unix socket
// plus its volatile state. Crash and Restart replace the running instance.
type Target struct {
	cfg Config
	log hclog.Logger

	mu  sync.Mutex
	cur *instance // nil after Crash or kill until Restart
	// last is the newest instance started, also once it stopped: a
	// Restart waits for its stop, whose listener close unlinks the socket
	// path, before it listens on that path again.
	last     *instance
	closed   bool
	exited   chan struct{} // closed when an instance stops by spdk_kill_instance
	counts   map[string]int
	total    int
	faults   map[string][]*Fault
	faulty   atomic.Bool // a fault was injected since the last ClearFaults
	restarts int
	nvme     map[string]*localNVMe // by canonical PCI address; fixed after New
	crashes  []string              // why instances died by themselves (see crashed)

	resMu     sync.Mutex // guards the reservations; never held while calling into an instance
	reserved  map[netip.AddrPort]*reserve.Port
	owned     []*reserve.Port // made by Reserve, closed by Close
	resClosed bool
}

// New validates cfg, listens on cfg.SockPath and starts answering requests
// in the background. Call Close (or Serve) to stop it.
func New(cfg Config) (*Target, error) {
	if cfg.SockPath == "" {
		return nil, fmt.Errorf("%w: empty SockPath", ErrConfig)
	}
	if cfg.ExamineDelay < 0 {
		return nil, fmt.Errorf("%w: negative ExamineDelay", ErrConfig)
	}
	if cfg.ExamineDelay == 0 {
		cfg.ExamineDelay = DefaultExamineDelay
	}
	for _, p := range cfg.Reserved {
		if p == nil {
			return nil, fmt.Errorf("%w: nil reserved port", ErrConfig)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	nvme, err := openNVMeDevices(cfg.NVMeDevices)
	if err != nil {
		return nil, err
	}
	t := &Target{
		cfg:    cfg,
		log:    cfg.Logger.Named("spdktest"),
		exited: make(chan struct{}),
		counts: map[string]int{},
		faults: map[string][]*Fault{},
		nvme:   nvme,

		reserved: map[netip.AddrPort]*reserve.Port{},
	}
	for _, p := range cfg.Reserved {
		if err := t.addReserved(p, false); err != nil {
			closeNVMeDevices(nvme)
			return nil, err
		}
	}
	in, err := t.start(cfg.WaitForRPC)
	if err != nil {
		closeNVMeDevices(nvme)
		return nil, err
	}
	t.mu.Lock()
	t.cur, t.last = in, in
	t.mu.Unlock()
	in.run()
	return t, nil
}

// SockPath returns the JSON-RPC socket path.
func (t *Target) SockPath() string { return t.cfg.SockPath }

// Serve blocks until ctx is done, Close is called, or spdk_kill_instance
// stops the process; it then closes the target. It returns nil in the last
// case and ctx.Err() in the first.
func (t *Target) Serve(ctx context.Context) error {
	t.mu.Lock()
	exited := t.exited
	t.mu.Unlock()
	select {
	case <-ctx.Done():
		_ = t.Close()
		return ctx.Err()
	case <-exited:
		_ = t.Close()
		return nil
	}
}

// Exited is closed when spdk_kill_instance stops the current instance.
func (t *Target) Exited() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.exited
}

// Close stops the target and waits for its goroutines. It is idempotent.
func (t *Target) Close() error {
	t.mu.Lock()
	in := t.cur
	t.cur = nil
	wasClosed := t.closed
	t.closed = true
	t.mu.Unlock()
	if in != nil {
		in.stop()
	}
	if !wasClosed {
		_ = os.Remove(t.cfg.SockPath)
		closeNVMeDevices(t.nvme)
		return t.closeReserved()
	}
	return nil
}

// Crash simulates kill -9: the socket, every connection and every NVMe-oF
// listener and session close, and all volatile state (objects, malloc data)
// is lost. Files under aio bdevs keep their data.
func (t *Target) Crash() {
	t.mu.Lock()
	in := t.cur
	t.cur = nil
	t.mu.Unlock()
	if in != nil {
		in.stop()
	}
}

// Restart starts a fresh instance on the same socket path after Crash or
// spdk_kill_instance (it crashes the running one first).
func (t *Target) Restart(waitForRPC bool) error {
	t.Crash()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	select {
	case <-t.exited:
		t.exited = make(chan struct{})
	default:
	}
	t.restarts++
	prev := t.last
	t.mu.Unlock()
	if prev != nil {
		// A kill (spdk_kill_instance) or a crash the fake found stops its
		// instance after clearing cur: wait until that stop is done (or do
		// it), or its listener's close would unlink the new socket.
		prev.stop()
	}
	in, err := t.start(waitForRPC)
	if err != nil {
		return err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		in.stop()
		return ErrClosed
	}
	t.cur, t.last = in, in
	t.mu.Unlock()
	in.run()
	return nil
}

// noteCrash keeps reason, the log line SPDK prints before it dies of
// something it does not survive, for Crashes.
func (t *Target) noteCrash(reason string) {
	t.log.Error("target crashed", "reason", reason)
	t.mu.Lock()
	t.crashes = append(t.crashes, reason)
	t.mu.Unlock()
}

// crashed stops instance in as a crash of the real process would (like
// Crash), after noteCrash.
func (t *Target) crashed(in *instance) {
	t.mu.Lock()
	if t.cur == in {
		t.cur = nil
	}
	t.mu.Unlock()
	in.stop()
}

// Crashes returns why the target crashed by itself, oldest first: each a
// request sequence on which real SPDK v24.01 dies too (not Crash, which is
// an injected fault). A test that reaches one has found an ordering bug.
func (t *Target) Crashes() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.crashes...)
}

// exit is spdk_kill_instance: the instance stops after its reply is sent.
func (t *Target) exit(in *instance) {
	t.mu.Lock()
	if t.cur == in {
		t.cur = nil
	}
	select {
	case <-t.exited:
	default:
		close(t.exited)
	}
	t.mu.Unlock()
	in.stop()
}

func (t *Target) count(method string) {
	t.mu.Lock()
	t.counts[method]++
	t.total++
	t.mu.Unlock()
}

// RPCCount returns how many requests for method this target received (also
// those that failed), across restarts.
func (t *Target) RPCCount(method string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[method]
}

// TotalRPCs returns how many well-formed requests this target received.
func (t *Target) TotalRPCs() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// CalledMethods returns the methods called so far, sorted.
func (t *Target) CalledMethods() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.counts))
	for m := range t.counts {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// ResetCounts zeroes the RPC counters.
func (t *Target) ResetCounts() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts = map[string]int{}
	t.total = 0
}

// Methods returns the methods this fake implements, sorted (the same list as
// the package-level Methods).
func (t *Target) Methods() []string { return Methods() }

// Methods returns the methods this fake implements, sorted.
func Methods() []string {
	out := make([]string, 0, len(handlers))
	for m := range handlers {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// start creates an instance listening on the socket path; run starts
// answering once the instance is the target's current one.
func (t *Target) start(waitForRPC bool) (*instance, error) {
	_ = os.Remove(t.cfg.SockPath)
	ln, err := net.Listen("unix", t.cfg.SockPath)
	if err != nil {
		return nil, fmt.Errorf("spdktest: listen %s: %w", t.cfg.SockPath, err)
	}
	return newInstance(t, ln, waitForRPC), nil
}

func (in *instance) run() {
	in.wg.Add(1)
	go in.acceptLoop()
}
