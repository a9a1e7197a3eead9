package spdkproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vda-io/vda/internal/testproc"
	"github.com/vda-io/vda/spdk"
)

// Environment variables.
const (
	// EnvDir names the SPDK tree: a directory with wrap/spdk_tgt.
	EnvDir = "VDA_SPDK_DIR"
	// EnvRequire, set to 1, makes Require fail a test instead of skipping.
	EnvRequire = "VDA_REQUIRE_SPDK"
)

// ErrUnavailable wraps every reason Available gives.
var ErrUnavailable = errors.New("spdkproc: real SPDK unavailable")

// Dir returns the SPDK tree named by $VDA_SPDK_DIR ("" if unset).
func Dir() string { return os.Getenv(EnvDir) }

// Available returns nil when spdk_tgt can run here, or an error wrapping
// ErrUnavailable that says why not.
func Available() error { return check(Dir(), os.Geteuid()) }

func check(dir string, euid int) error {
	if dir == "" {
		return fmt.Errorf("%w: %s is not set (point it at an SPDK v24.01 tree such as ../shared/spdk/v24.01 "+
			"after its setup script ran; scripts/test does this)", ErrUnavailable, EnvDir)
	}
	bin := filepath.Join(dir, "wrap", "spdk_tgt")
	st, err := os.Stat(bin)
	if err != nil {
		return fmt.Errorf("%w: %s=%s has no wrap/spdk_tgt: %v", ErrUnavailable, EnvDir, dir, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s is not executable", ErrUnavailable, bin)
	}
	if euid != 0 {
		return fmt.Errorf("%w: spdk_tgt needs root (running as uid %d)", ErrUnavailable, euid)
	}
	return nil
}

// Required reports whether VDA_REQUIRE_SPDK=1.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Require returns the SPDK tree, or ends the test: it skips with the
// reason real SPDK is unavailable, or fails when VDA_REQUIRE_SPDK=1.
func Require(t testing.TB) string {
	t.Helper()
	if err := Available(); err != nil {
		if Required() {
			t.Fatalf("%v (and %s=1)", err, EnvRequire)
		} else {
			t.Skip(err)
		}
	}
	return Dir()
}

// CommandFunc makes the command that runs a program; exec.CommandContext
// runs it here, (*netnstest.Host).Command inside a network namespace.
type CommandFunc func(ctx context.Context, name string, args ...string) *exec.Cmd

// Config describes one spdk_tgt.
type Config struct {
	// Dir is the SPDK tree ($VDA_SPDK_DIR if empty).
	Dir string
	// Name identifies the target in messages ("spdk_tgt" if empty).
	Name string
	// Socket is the JSON-RPC unix socket path; required. Unix socket paths
	// are short (107 bytes): keep it out of deep temporary directories.
	Socket string
	// LogPath receives spdk_tgt's output (Socket + ".log" if empty). spdk_tgt
	// runs in its directory, where a crash leaves its core dump.
	LogPath string
	// MemMB is the DPDK memory size, -s (1024 if zero; less fails init).
	MemMB int
	// CPUMask is the reactor mask, -m ("0x1" if empty). Each core in it is
	// busy-polled.
	CPUMask string
	// Args are added to the command line.
	Args []string
	// Bare starts spdk_tgt as a user would, without VDA's initialization
	// (no bdev_set_options -d, so bdev auto-examine stays on): Start waits
	// for the RPC socket and framework_wait_init. With WaitForRPC too, the
	// target is left in its start-up phase for the caller's
	// framework_start_init.
	Bare bool
	// WaitForRPC (only with Bare) passes --wait-for-rpc.
	WaitForRPC bool
	// Command makes the command (exec.CommandContext if nil).
	Command CommandFunc
	// StartTimeout bounds the wait for the socket and the framework's
	// initialization (2 min if zero: start-up takes seconds on a loaded
	// machine).
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL
	// (1 min if zero; a target with a transport takes ~8 s under load).
	StopTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Dir == "" {
		c.Dir = Dir()
	}
	if c.Name == "" {
		c.Name = "spdk_tgt"
	}
	if c.LogPath == "" {
		c.LogPath = c.Socket + ".log"
	}
	if c.MemMB == 0 {
		c.MemMB = 1024
	}
	if c.CPUMask == "" {
		c.CPUMask = "0x1"
	}
	if c.Command == nil {
		c.Command = exec.CommandContext
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 2 * time.Minute
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = time.Minute
	}
	return c
}

// Target is a running spdk_tgt. The embedded Proc controls it: Stop, Kill,
// Pause, Resume, Wait, Done, Exited, PID, Tail.
type Target struct {
	*testproc.Proc
	cfg   Config
	crash *crashScanner
}

// args returns the spdk_tgt command line Start uses for c (without the
// program).
func (c Config) args() []string {
	args := []string{"--no-huge", "-s", strconv.Itoa(c.MemMB), "--no-pci", "--disable-cpumask-locks",
		"-m", c.CPUMask, "-r", c.Socket}
	if !c.Bare || c.WaitForRPC {
		args = append(args, "--wait-for-rpc")
	}
	return append(args, c.Args...)
}

// Start starts spdk_tgt as cfg says and initializes it: it waits for the
// RPC socket, sends bdev_set_options -d (no automatic examine),
// framework_start_init and framework_wait_init. On any failure the process
// is killed and the error carries the end of its log.
func Start(ctx context.Context, cfg Config) (*Target, error) {
	cfg = cfg.withDefaults()
	if cfg.Socket == "" {
		return nil, errors.New("spdkproc: Config.Socket is required")
	}
	if err := check(cfg.Dir, os.Geteuid()); err != nil {
		return nil, err
	}
	if err := os.Remove(cfg.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spdkproc: %s: stale socket: %w", cfg.Name, err)
	}
	// The process outlives ctx: Stop and Kill end it.
	cmd := cfg.Command(context.Background(), filepath.Join(cfg.Dir, "wrap", "spdk_tgt"), cfg.args()...)
	// glibc reports heap corruption ("double free or corruption") on the
	// terminal unless told to use stderr, which is the log.
	cmd.Env = append(os.Environ(), "LIBC_FATAL_STDERR_=1")
	// A crash may dump core into the working directory: the log's, not
	// the test's source directory.
	cmd.Dir = filepath.Dir(cfg.LogPath)
	p, err := testproc.Start(testproc.Spec{Name: cfg.Name, Cmd: cmd, LogPath: cfg.LogPath,
		StopTimeout: cfg.StopTimeout, AfterExit: removeRuntimeDir})
	if err != nil {
		return nil, fmt.Errorf("spdkproc: %w", err)
	}
	tg := &Target{Proc: p, cfg: cfg, crash: newCrashScanner(cfg.LogPath)}
	if err := tg.init(ctx); err != nil {
		_ = p.Kill()
		return nil, fmt.Errorf("spdkproc: %s (pid %d): %w\n%s", cfg.Name, p.PID(), err, p.Tail(4000))
	}
	return tg, nil
}

// StartT is Start for tests: it fails t when the target does not start and
// kills the target when t ends.
func StartT(t testing.TB, cfg Config) *Target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.withDefaults().StartTimeout)
	defer cancel()
	tg, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.Kill() })
	return tg
}

// removeRuntimeDir removes the directory DPDK leaves for every process.
func removeRuntimeDir(pid int) {
	_ = os.RemoveAll(RuntimeDir(pid))
}

// RuntimeDir is the DPDK runtime directory of the spdk_tgt with that PID,
// which Start removes once the process has exited.
func RuntimeDir(pid int) string { return fmt.Sprintf("/var/run/dpdk/spdk_pid%d", pid) }

func (tg *Target) init(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, tg.cfg.StartTimeout)
	defer cancel()
	c, err := tg.dialWhenUp(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	if tg.cfg.Bare {
		if tg.cfg.WaitForRPC {
			return nil
		}
		if err := c.FrameworkWaitInit(ctx); err != nil {
			return fmt.Errorf("framework_wait_init: %w", err)
		}
		return nil
	}
	off := false
	if err := c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: &off}); err != nil {
		return fmt.Errorf("bdev_set_options -d: %w", err)
	}
	if err := c.FrameworkStartInit(ctx); err != nil {
		return fmt.Errorf("framework_start_init: %w", err)
	}
	if err := c.FrameworkWaitInit(ctx); err != nil {
		return fmt.Errorf("framework_wait_init: %w", err)
	}
	return nil
}

// dialWhenUp polls the socket until spdk_tgt answers, it exits, or ctx
// ends.
func (tg *Target) dialWhenUp(ctx context.Context) (*spdk.Client, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := spdk.Dial(dctx, tg.cfg.Socket)
		cancel()
		if err == nil {
			return c, nil
		}
		select {
		case <-tg.Done():
			return nil, fmt.Errorf("exited before its RPC socket came up: %v", tg.Err())
		case <-ctx.Done():
			return nil, fmt.Errorf("RPC socket %s never answered: %w (last: %v)", tg.cfg.Socket, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Socket returns the JSON-RPC socket path.
func (tg *Target) Socket() string { return tg.cfg.Socket }

// Dial connects an SPDK client to the target.
func (tg *Target) Dial(ctx context.Context, opts ...spdk.Option) (*spdk.Client, error) {
	return spdk.Dial(ctx, tg.cfg.Socket, opts...)
}

// Crashed returns nil while the target is fine, or an error wrapping
// ErrCrashed with the evidence: an exit nobody asked for (Stop and Kill
// ask), and the log lines that show a crash.
func (tg *Target) Crashed() error {
	var exit error
	if tg.Exited() && !tg.Requested() {
		exit = fmt.Errorf("exited without being asked to: %v", tg.Err())
	}
	lines := tg.crash.scan()
	if exit == nil && len(lines) == 0 {
		return nil
	}
	return crashError(tg.cfg.Name, tg.PID(), exit, lines, tg.Tail(2000))
}
