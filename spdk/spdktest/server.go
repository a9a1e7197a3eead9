package spdktest

import (
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// Server is a Target run for one test: its socket lives in a temporary
// directory and it stops when the test ends. After spdk_kill_instance or
// Crash it stays down until Restart.
type Server struct {
	*Target
}

// Option configures NewServer.
type Option func(*Config)

// WithWaitForRPC starts the server in the STARTUP phase (spdk_tgt
// --wait-for-rpc).
func WithWaitForRPC() Option { return func(c *Config) { c.WaitForRPC = true } }

// WithLogger sends the server's logs to l.
func WithLogger(l hclog.Logger) Option { return func(c *Config) { c.Logger = l } }

// WithExamineDelay sets how long bdev_examine takes to find an lvstore.
func WithExamineDelay(d time.Duration) Option { return func(c *Config) { c.ExamineDelay = d } }

// WithNVMeDevice puts a local NVMe SSD on the server's PCIe bus (see
// NVMeDevice).
func WithNVMeDevice(d NVMeDevice) Option {
	return func(c *Config) { c.NVMeDevices = append(c.NVMeDevices, d) }
}

// WithReserved makes the server listen on these reserved ports when a
// listener is added on their addresses (see Config.Reserved).
func WithReserved(ports ...*reserve.Port) Option {
	return func(c *Config) { c.Reserved = append(c.Reserved, ports...) }
}

// WithSockPath serves on path instead of a socket in a temporary directory.
func WithSockPath(path string) Option { return func(c *Config) { c.SockPath = path } }

// TB is what NewServer needs of a test: *testing.T and *testing.B have it.
// (The package does not import testing, so programs that run the fake,
// such as vda-fakespdk and the dev cluster, do not link it.)
type TB = reserve.TB

// NewServer starts a fake SPDK for t and stops it in t.Cleanup. It fails the
// test if the server cannot start.
func NewServer(t TB, opts ...Option) *Server {
	t.Helper()
	cfg := DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.SockPath == "" {
		// Unix socket paths are limited to ~108 bytes and t.TempDir() can be
		// longer, so use a short private directory.
		dir, err := os.MkdirTemp("", "spdk")
		if err != nil {
			t.Fatalf("spdktest: temp dir: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		cfg.SockPath = filepath.Join(dir, "spdk.sock")
	}
	tg, err := New(cfg)
	if err != nil {
		t.Fatalf("spdktest: %v", err)
	}
	t.Cleanup(func() { _ = tg.Close() })
	return &Server{Target: tg}
}
