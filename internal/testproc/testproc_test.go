package testproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary be the helper process the tests start.
func TestMain(m *testing.M) {
	switch os.Getenv("TESTPROC_HELPER") {
	case "":
		os.Exit(m.Run())
	case "graceful": // exits 0 on SIGTERM
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		fmt.Println("terminated")
		os.Exit(0)
	case "stubborn": // ignores SIGTERM
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		select {}
	case "exit3":
		fmt.Println("bye")
		os.Exit(3)
	}
}

func helper(t *testing.T, mode string, timeout time.Duration, after func(int)) *Proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TESTPROC_HELPER="+mode)
	return StartT(t, Spec{Name: mode, Cmd: cmd, LogPath: filepath.Join(t.TempDir(), mode+".log"),
		StopTimeout: timeout, AfterExit: after})
}

func waitLog(t *testing.T, p *Proc, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(p.Tail(1<<10), want) },
		time.Minute, 10*time.Millisecond, "%s never logged %q: %s", p.Name(), want, p.Tail(1<<10))
}

func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func TestStopIsGracefulAndRequested(t *testing.T) {
	p := helper(t, "graceful", time.Minute, nil)
	waitLog(t, p, "ready")
	require.False(t, p.Exited())
	require.NoError(t, p.Stop())
	require.True(t, p.Exited())
	require.True(t, p.Requested())
	require.NoError(t, p.Err())
	require.Contains(t, p.Tail(100), "terminated")
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	p := helper(t, "stubborn", 200*time.Millisecond, nil)
	waitLog(t, p, "ready")
	err := p.Stop()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, syscall.SIGKILL, ee.Sys().(syscall.WaitStatus).Signal())
}

func TestPauseResume(t *testing.T) {
	p := helper(t, "graceful", time.Minute, nil)
	waitLog(t, p, "ready")
	require.NoError(t, p.Pause())
	require.Eventually(t, func() bool { return procState(p.PID()) == "T" }, time.Minute, 10*time.Millisecond)
	require.NoError(t, p.Resume())
	require.Eventually(t, func() bool { return procState(p.PID()) != "T" }, time.Minute, 10*time.Millisecond)
	// A paused process still stops: Stop continues it.
	require.NoError(t, p.Pause())
	require.Eventually(t, func() bool { return procState(p.PID()) == "T" }, time.Minute, 10*time.Millisecond)
	require.NoError(t, p.Stop())
}

func TestUnrequestedExit(t *testing.T) {
	ran := make(chan int, 1)
	p := helper(t, "exit3", time.Minute, func(pid int) { ran <- pid })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := p.Wait(ctx)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 3, ee.ExitCode())
	require.False(t, p.Requested())
	select {
	case pid := <-ran: // AfterExit ran before Done
		require.Equal(t, p.PID(), pid)
	default:
		t.Fatal("AfterExit had not run when Done closed")
	}
	// Kill and signals after the exit are harmless.
	require.NoError(t, p.Pause())
	require.True(t, errors.As(p.Kill(), &ee))
}

func TestWaitHonoursContext(t *testing.T) {
	p := helper(t, "graceful", time.Minute, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, p.Wait(ctx), context.Canceled)
	require.Nil(t, p.Err())
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	require.NoError(t, os.WriteFile(path, []byte("0123456789"), 0o644))
	require.Equal(t, "0123456789", Tail(path, 100))
	require.Equal(t, "...789", Tail(path, 3))
	require.Contains(t, Tail(filepath.Join(t.TempDir(), "none"), 3), "no log")
}

func TestStartNeedsCmdAndLog(t *testing.T) {
	_, err := Start(Spec{Cmd: exec.Command("true")})
	require.Error(t, err)
	_, err = Start(Spec{LogPath: filepath.Join(t.TempDir(), "x")})
	require.Error(t, err)
	_, err = Start(Spec{Cmd: exec.Command("/nonexistent/binary"), LogPath: filepath.Join(t.TempDir(), "x")})
	require.Error(t, err)
}
