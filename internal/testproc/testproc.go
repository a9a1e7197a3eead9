package testproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultStopTimeout is how long Stop waits after SIGTERM before it kills.
const DefaultStopTimeout = 30 * time.Second

// Spec describes a process to start.
type Spec struct {
	// Name identifies the process in messages (e.g. "cn0-agent").
	Name string
	// Cmd is the command, not yet started. Its Stdout and Stderr are set
	// to the log file, it gets a process group of its own, and it is
	// killed if the test binary dies.
	Cmd *exec.Cmd
	// LogPath is the file the output is appended to; required.
	LogPath string
	// StopTimeout bounds how long Stop waits after SIGTERM before SIGKILL
	// (DefaultStopTimeout if zero).
	StopTimeout time.Duration
	// AfterExit, if set, runs once the process has exited and before Done
	// is closed, with the process's PID (to clean up what it leaves).
	AfterExit func(pid int)
}

// Proc is a started process.
type Proc struct {
	name    string
	cmd     *exec.Cmd
	pid     int
	log     string
	timeout time.Duration
	done    chan struct{}
	err     error // the exit status; written before done closes

	mu        sync.Mutex
	requested bool // Stop or Kill asked for the exit
}

// Start starts the process described by s.
func Start(s Spec) (*Proc, error) {
	if s.Cmd == nil || s.LogPath == "" {
		return nil, errors.New("testproc: Spec needs a Cmd and a LogPath")
	}
	if s.Name == "" {
		s.Name = s.Cmd.Path
	}
	if s.StopTimeout <= 0 {
		s.StopTimeout = DefaultStopTimeout
	}
	f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testproc: %s: %w", s.Name, err)
	}
	p := &Proc{name: s.Name, cmd: s.Cmd, log: s.LogPath, timeout: s.StopTimeout, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if p.cmd.SysProcAttr == nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	p.cmd.SysProcAttr.Setpgid = true
	// Should the test binary die without running its cleanups (a test
	// timeout panics), its processes die with it rather than spin on.
	p.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := p.cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("testproc: start %s: %w", s.Name, err)
	}
	p.pid = p.cmd.Process.Pid
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		if s.AfterExit != nil {
			s.AfterExit(p.pid)
		}
		close(p.done)
	}()
	return p, nil
}

// StartT is Start for tests: it fails t if the process does not start
// and kills it when t ends.
func StartT(t testing.TB, s Spec) *Proc {
	t.Helper()
	p, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

// Name returns the name the process was started under.
func (p *Proc) Name() string { return p.name }

// PID returns the process ID (of the group leader).
func (p *Proc) PID() int { return p.pid }

// LogPath returns the file the process logs to.
func (p *Proc) LogPath() string { return p.log }

// Done is closed once the process has exited (and AfterExit has run).
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns the exit status (as exec.Cmd.Wait reports it) once the
// process has exited, and nil while it runs.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Wait waits until the process exits or ctx ends, and returns its exit
// status or ctx's error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Requested reports whether Stop or Kill was called: an exit that was not
// requested is a crash or a bug.
func (p *Proc) Requested() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requested
}

// Signal sends sig to the process's group. Signalling a process that has
// exited is not an error.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("testproc: signal %v to %s: %w", sig, p.name, err)
	}
	return nil
}

// Pause stops the process with SIGSTOP: it keeps its state and its
// sockets, but answers nothing until Resume.
func (p *Proc) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Resume continues a paused process with SIGCONT.
func (p *Proc) Resume() error { return p.Signal(syscall.SIGCONT) }

// Stop asks the process to exit (SIGTERM, and SIGCONT in case it is
// paused), waits up to the Spec's StopTimeout, then kills it. It returns
// the exit status.
func (p *Proc) Stop() error {
	p.request()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	_ = p.Signal(syscall.SIGCONT)
	t := time.NewTimer(p.timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
	}
	return p.Kill()
}

// Kill kills the process group with SIGKILL and waits for the process.
// It returns the exit status (a "signal: killed" error, unless the process
// had exited before). Kill is idempotent.
func (p *Proc) Kill() error {
	p.request()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return p.err
}

func (p *Proc) request() {
	p.mu.Lock()
	p.requested = true
	p.mu.Unlock()
}

// Tail returns at most the last max bytes of the process's log.
func (p *Proc) Tail(max int) string {
	return Tail(p.log, max)
}

// Tail returns at most the last max bytes of the file at path, starting
// with "..." when it was cut.
func Tail(path string, max int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off, prefix := int64(0), ""
	if st.Size() > int64(max) {
		off, prefix = st.Size()-int64(max), "..."
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return prefix + string(b)
}
