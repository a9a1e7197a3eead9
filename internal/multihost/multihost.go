package multihost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/internal/testproc"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/mtls"
)

// Server is one of the tutorial's servers.
type Server struct{ Name, IP string }

// Servers are the servers of seed 003 and their addresses, as the tutorial
// lists them.
var Servers = []Server{
	{"postgresql", "192.168.0.10"}, {"portal", "192.168.0.11"}, {"monitor", "192.168.0.12"},
	{"cli", "192.168.0.13"}, {"dn0", "192.168.0.14"}, {"dn1", "192.168.0.15"}, {"cn0", "192.168.0.16"},
	{"cn1", "192.168.0.17"}, {"host0", "192.168.0.18"}, {"host1", "192.168.0.19"},
}

// DBURI is the tutorial's store.
const DBURI = "postgresql://vda_user:vda_password@192.168.0.10:5432/vda_db"

// Agent ports and NVMe-oF ports of the tutorial.
const (
	DNAgentPort = 9720
	CNAgentPort = 9820
	DNNVMfPort  = "4420"
	CNNVMfPort  = "4430"
)

// binaries builds every command once per test binary.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// Binaries builds the project's commands into a temporary directory once
// per test binary and returns it. Call RemoveBinaries from TestMain when
// the tests are done.
func Binaries(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "vda-multihost-bin")
		if binErr != nil {
			return
		}
		var out bytes.Buffer
		args := []string{"build", "-o", binDir + "/"}
		for _, c := range []string{"vda", "vda-host", "vda-portal", "vda-monitor", "vda-agent", "vda-db", "vda-fakespdk"} {
			args = append(args, "github.com/vda-io/vda/cmd/"+c)
		}
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out.String())
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// RemoveBinaries removes what Binaries built.
func RemoveBinaries() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// Env is the tutorial's deployment: one network namespace per server, each
// with its own certificates (the README's certificates step; every process
// started on a server finds them through VDA_TLS_DIR, so the tutorial's
// command lines run unchanged over mutual TLS with roles).
type Env struct {
	Net   *netnstest.Network
	Bin   string // the built binaries
	Logs  string // every process's log file
	State string // a short directory for sockets and agent state
	// AioDir is where disk nodes may keep aio PDs (their --aio-dir).
	AioDir string

	mu    sync.Mutex
	procs []*testproc.Proc
}

// New builds the tutorial's network (every server in Servers) and the
// binaries. Processes started through the Env are killed when t ends. It
// fails t if namespaces are unavailable: check netnstest.Available first.
func New(t *testing.T) *Env {
	t.Helper()
	e := &Env{Bin: Binaries(t), Logs: t.TempDir()}
	var err error
	e.State, err = os.MkdirTemp("", "vda-mh") // short: unix socket paths
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(e.State) })
	e.AioDir = filepath.Join(e.State, "aio")
	require.NoError(t, os.MkdirAll(e.AioDir, 0o755))
	e.makeCerts(t)
	e.Net = netnstest.New(t)
	for _, s := range Servers {
		e.Net.AddHost(s.Name, s.IP+"/24")
	}
	// Registered after the network: cleanups run last-in first-out, so the
	// processes die before their namespaces go.
	t.Cleanup(e.killAll)
	return e
}

// TLSDir is server host's certificate directory (its /etc/vda/tls).
func (e *Env) TLSDir(host string) string { return filepath.Join(e.State, "tls", host) }

// tlsEnv is the environment that makes a process on host find its own
// certificates.
func (e *Env) tlsEnv(host string) []string {
	return append(os.Environ(), mtls.EnvDir+"="+e.TLSDir(host))
}

// makeCerts runs the deployment's certificates step with our CLI: vda
// certs init, then vda certs issue per server (the portal, the monitor,
// the CLI and the hosts as admins, every node's agent named after the
// node the tutorial registers).
func (e *Env) makeCerts(t testing.TB) {
	t.Helper()
	ca := filepath.Join(e.State, "vda-ca")
	vda := filepath.Join(e.Bin, "vda")
	run := func(args ...string) {
		out, err := exec.Command(vda, args...).CombinedOutput()
		require.NoError(t, err, "vda %s: %s", strings.Join(args, " "), out)
	}
	run("certs", "init", "--dir", ca)
	run("certs", "issue", "--dir", ca, "--role", "portal", "--ip", "192.168.0.11", "--out", e.TLSDir("portal"))
	run("certs", "issue", "--dir", ca, "--role", "monitor", "--ip", "192.168.0.12", "--out", e.TLSDir("monitor"))
	for _, h := range []string{"cli", "host0", "host1"} {
		run("certs", "issue", "--dir", ca, "--role", "admin", "--name", "operator-"+h, "--out", e.TLSDir(h))
	}
	for _, s := range Servers {
		port := map[string]int{"dn0": DNAgentPort, "dn1": DNAgentPort, "cn0": CNAgentPort, "cn1": CNAgentPort}[s.Name]
		if port != 0 {
			run("certs", "issue", "--dir", ca, "--role", "agent", "--name", s.IP+":"+strconv.Itoa(port), "--out", e.TLSDir(s.Name))
		}
	}
}

// Host returns the server called name.
func (e *Env) Host(name string) *netnstest.Host { return e.Net.Host(name) }

// Track adds a process started elsewhere (such as an spdk_tgt) to those the
// Env dumps and kills.
func (e *Env) Track(p *testproc.Proc) {
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
}

func (e *Env) killAll() {
	e.mu.Lock()
	procs := append([]*testproc.Proc(nil), e.procs...)
	e.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Kill()
	}
}

// StartProgram runs bin with args on host under name, logging to
// Logs/<name>.log (appended across restarts). It fails t if the program
// does not start.
func (e *Env) StartProgram(t testing.TB, host, name, bin string, args ...string) *testproc.Proc {
	t.Helper()
	cmd := e.Host(host).Command(context.Background(), bin, args...)
	cmd.Env = e.tlsEnv(host)
	p, err := testproc.Start(testproc.Spec{Name: name, Cmd: cmd, LogPath: filepath.Join(e.Logs, name+".log")})
	require.NoError(t, err)
	e.Track(p)
	return p
}

// Start runs one of our binaries (args[0], e.g. "vda-portal") on host.
func (e *Env) Start(t testing.TB, host, name string, args ...string) *testproc.Proc {
	t.Helper()
	return e.StartProgram(t, host, name, filepath.Join(e.Bin, args[0]), args[1:]...)
}

// Procs returns every process the Env started or tracks.
func (e *Env) Procs() []*testproc.Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*testproc.Proc(nil), e.procs...)
}

// DumpLogs logs every process's log tail to t if t failed.
func (e *Env) DumpLogs(t testing.TB) {
	if !t.Failed() {
		return
	}
	for _, p := range e.Procs() {
		t.Logf("==== %s (pid %d, exited %v: %v)\n%s", p.Name(), p.PID(), p.Exited(), p.Err(), p.Tail(6000))
	}
}

// RunOn runs a program on host to completion and returns its stdout and
// stderr.
func (e *Env) RunOn(ctx context.Context, host, bin string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	cmd := e.Host(host).Command(ctx, bin, args...)
	cmd.Env = e.tlsEnv(host)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), strings.TrimSpace(errb.String()), err
}

// VDA runs our CLI on host (the tutorial's cli server, or a host).
func (e *Env) VDA(ctx context.Context, host string, args ...string) (string, error) {
	return e.run(ctx, host, "vda", args...)
}

// VDAHost runs the host tool (vda-host) on host.
func (e *Env) VDAHost(ctx context.Context, host string, args ...string) (string, error) {
	return e.run(ctx, host, "vda-host", args...)
}

// run runs one of our binaries on host to completion and returns its
// stdout; an error carries the command line and stderr.
func (e *Env) run(ctx context.Context, host, bin string, args ...string) (string, error) {
	out, errOut, err := e.RunOn(ctx, host, filepath.Join(e.Bin, bin), args...)
	if err != nil {
		return out, fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, errOut)
	}
	return out, nil
}

// StartControlPlane starts PostgreSQL (as the tutorial configures it),
// creates the schema with vda-db, and starts the portal and the monitor
// with the tutorial's flags and extra monitor flags.
func (e *Env) StartControlPlane(t testing.TB, ctx context.Context, monitorArgs ...string) {
	t.Helper()
	e.StartPostgres(t)
	_, errOut, err := e.RunOn(ctx, "portal", filepath.Join(e.Bin, "vda-db"), "--action", "create", "--db-uri", DBURI)
	require.NoError(t, err, errOut)
	e.Start(t, "portal", "portal", "vda-portal", "--listener", "192.168.0.11", "--port", "9520", "--db-uri", DBURI)
	e.Start(t, "monitor", "monitor", append([]string{"vda-monitor", "--listener", "192.168.0.12", "--port", "9620",
		"--db-uri", DBURI}, monitorArgs...)...)
}

// StartAgent starts node's agent in front of the SPDK at sock with the
// tutorial's flags (and a state directory; disk nodes may keep aio PDs in
// AioDir), as role "dn" or "cn".
func (e *Env) StartAgent(t testing.TB, node, role, sock string) *testproc.Proc {
	t.Helper()
	port, nvmf := DNAgentPort, DNNVMfPort
	var extra []string
	if role == "cn" {
		port, nvmf = CNAgentPort, CNNVMfPort
	} else {
		extra = []string{"--aio-dir", e.AioDir}
	}
	ip := e.Host(node).IP
	return e.Start(t, node, node+"-agent", append([]string{"vda-agent", "--role", role, "--listener", ip,
		"--port", strconv.Itoa(port), "--sock-path", sock, "--listener-conf", ListenerConf(ip, nvmf),
		"--state-dir", filepath.Join(e.State, node+"-state")}, extra...)...)
}

// ListenerConf is the tutorial's --listener-conf for ip and port.
func ListenerConf(ip, port string) string {
	return fmt.Sprintf(`{"trtype":"tcp","traddr":"%s","adrfam":"ipv4","trsvcid":"%s"}`, ip, port)
}

// Tutorial runs the tutorial's commands for which keep returns true, as
// written, from the cli server. The portal may still be starting, and PDs
// become placeable once the monitor has seen them: each is retried for a
// minute.
func (e *Env) Tutorial(t testing.TB, ctx context.Context, keep func(line string) bool) {
	t.Helper()
	for _, line := range tutorial.Lines() {
		if keep != nil && !keep(line) {
			continue
		}
		args, err := tutorial.Args(line, "")
		require.NoError(t, err)
		tries := 0
		WaitFor(t, time.Minute, 100*time.Millisecond, line, func() error {
			_, err := e.VDA(ctx, "cli", args...)
			tries++
			// A retried create whose first attempt landed finds it there.
			if err != nil && tries > 1 && strings.Contains(err.Error(), "Error: AlreadyExists:") {
				return nil
			}
			return err
		})
	}
}

// DAState is what `vda da get` says of a DA.
type DAState struct {
	DaMsg struct {
		DaName         string      `json:"da_name"`
		Epoch          json.Number `json:"epoch"`
		PrimaryCntlrID string      `json:"primary_cntlr_id"`
		Initialized    bool        `json:"initialized"`
		CntlrList      []struct {
			CntlrID  string `json:"cntlr_id"`
			CntlrIdx int    `json:"cntlr_idx"`
			CnName   string `json:"cn_name"`
			Primary  bool   `json:"primary"`
			Health   string `json:"health"`
			Error    bool   `json:"error"`
			ErrorMsg string `json:"error_msg"`
		} `json:"cntlr_list"`
		VdList []struct {
			VdIdx    int    `json:"vd_idx"`
			DnName   string `json:"dn_name"`
			Health   string `json:"health"`
			Error    bool   `json:"error"`
			ErrorMsg string `json:"error_msg"`
		} `json:"vd_list"`
		Status struct {
			Health   string `json:"health"`
			ErrorMsg string `json:"error_msg"`
		} `json:"status"`
	} `json:"da_msg"`
}

// Epoch returns the DA's epoch (0 if unreadable).
func (s DAState) Epoch() int64 {
	n, _ := s.DaMsg.Epoch.Int64()
	return n
}

// Primary returns the index of the primary controller, or -1 when no
// controller (or more than one) says it is primary.
func (s DAState) Primary() int {
	idx := -1
	for _, c := range s.DaMsg.CntlrList {
		if c.Primary {
			if idx >= 0 {
				return -1
			}
			idx = c.CntlrIdx
		}
	}
	return idx
}

// Settled reports whether controller primaryIdx is the DA's healthy
// primary (any primary when primaryIdx < 0) and, with all, every other
// controller and VD is healthy and the DA's own status is healthy.
func (s DAState) Settled(primaryIdx int, all bool) bool {
	p := s.Primary()
	if p < 0 || (primaryIdx >= 0 && p != primaryIdx) || len(s.DaMsg.CntlrList) == 0 {
		return false
	}
	for _, c := range s.DaMsg.CntlrList {
		healthy := c.Health == "healthy" && !c.Error
		if !healthy && (all || c.Primary) {
			return false
		}
	}
	if !all {
		return true
	}
	for _, vd := range s.DaMsg.VdList {
		if vd.Health != "healthy" || vd.Error {
			return false
		}
	}
	return s.DaMsg.Status.Health == "healthy"
}

// DA reads a DA with `vda da get` from the cli server.
func (e *Env) DA(ctx context.Context, name string) (DAState, string, error) {
	var st DAState
	out, err := e.VDA(ctx, "cli", "--addr-port", tutorial.Portal, "da", "get", "--da-name", name)
	if err != nil {
		return st, out, err
	}
	return st, out, json.Unmarshal([]byte(out), &st)
}

// WaitDA waits until controller primaryIdx of da (any, if negative) is its
// healthy primary and, with all, everything else is healthy too (see
// Settled). It returns the state it saw last.
func (e *Env) WaitDA(t testing.TB, ctx context.Context, da string, primaryIdx int, all bool) DAState {
	t.Helper()
	var st DAState
	WaitFor(t, 2*time.Minute, 100*time.Millisecond, da+" never settled", func() error {
		s, out, err := e.DA(ctx, da)
		if err != nil {
			return err
		}
		if st = s; !s.Settled(primaryIdx, all) {
			return fmt.Errorf("last: %s", out)
		}
		return nil
	})
	return st
}

// WaitExpGet waits until the tutorial's exp get commands show what the
// tutorial shows (no errors on any controller).
func (e *Env) WaitExpGet(t testing.TB, ctx context.Context) {
	t.Helper()
	for line, want := range tutorial.ExpGet {
		args, err := tutorial.Args(line, "")
		require.NoError(t, err)
		WaitFor(t, 2*time.Minute, 100*time.Millisecond, line, func() error {
			out, err := e.VDA(ctx, "cli", args...)
			if err != nil {
				return err
			}
			return tutorial.CheckExpGet([]byte(out), want)
		})
	}
}

// WaitFor calls f every tick until it returns nil, and fails t with what
// and f's last error when timeout passes first.
func WaitFor(t testing.TB, timeout, tick time.Duration, what string, f func() error) {
	t.Helper()
	if err := Poll(timeout, tick, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Poll calls f every tick until it returns nil, or returns f's last error
// when timeout passes first.
func Poll(timeout, tick time.Duration, f func() error) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-deadline.C:
			return fmt.Errorf("after %v: %w", timeout, err)
		case <-ticker.C:
		}
	}
}
