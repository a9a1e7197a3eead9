package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/spdk"
)

// The servers of seed 003 and their addresses, as the tutorial lists them.
var servers = []struct{ name, ip string }{
	{"postgresql", "192.168.0.10"}, {"portal", "192.168.0.11"}, {"monitor", "192.168.0.12"},
	{"cli", "192.168.0.13"}, {"dn0", "192.168.0.14"}, {"dn1", "192.168.0.15"}, {"cn0", "192.168.0.16"},
	{"cn1", "192.168.0.17"}, {"host0", "192.168.0.18"}, {"host1", "192.168.0.19"},
}

const dbURI = "postgresql://vda_user:vda_password@192.168.0.10:5432/vda_db"

// env is the tutorial's deployment: one network namespace per server.
type env struct {
	t      *testing.T
	net    *netnstest.Network
	bin    string
	logs   string
	state  string
	procs  []*proc
	spdk   map[string]*proc
	agents map[string]*proc
}

func (e *env) host(name string) *netnstest.Host { return e.net.Host(name) }

// start runs a long-lived binary of ours on host, with VDA_TLS_DIR set to
// that server's certificates.
func (e *env) start(host, name string, args ...string) *proc {
	p := start(e.t, e.logs, e.host(host), e.tlsEnv(host), name, filepath.Join(e.bin, args[0]), args[1:]...)
	e.procs = append(e.procs, p)
	return p
}

// tlsDir is where server host's certificates are: its /etc/vda/tls.
func (e *env) tlsDir(host string) string { return filepath.Join(e.state, "tls", host) }

func (e *env) tlsEnv(host string) []string { return []string{mtls.EnvDir + "=" + e.tlsDir(host)} }

// makeCerts runs the deployment's certificates step: vda certs init, then
// vda certs issue per server (the portal, the monitor, the CLI, every
// node's agent named after the node the tutorial registers).
func (e *env) makeCerts(ctx context.Context) {
	e.t.Helper()
	ca := filepath.Join(e.state, "vda-ca")
	vda := filepath.Join(e.bin, "vda")
	run := func(args ...string) {
		out, err := exec.CommandContext(ctx, vda, args...).CombinedOutput()
		require.NoError(e.t, err, "vda %s: %s", strings.Join(args, " "), out)
	}
	run("certs", "init", "--dir", ca)
	run("certs", "issue", "--dir", ca, "--role", "portal", "--ip", "192.168.0.11", "--out", e.tlsDir("portal"))
	run("certs", "issue", "--dir", ca, "--role", "monitor", "--ip", "192.168.0.12", "--out", e.tlsDir("monitor"))
	run("certs", "issue", "--dir", ca, "--role", "admin", "--name", "operator", "--out", e.tlsDir("cli"))
	for node, name := range map[string]string{"dn0": "192.168.0.14:9720", "dn1": "192.168.0.15:9720",
		"cn0": "192.168.0.16:9820", "cn1": "192.168.0.17:9820"} {
		run("certs", "issue", "--dir", ca, "--role", "agent", "--name", name, "--out", e.tlsDir(node))
	}
}

// dumpLogs prints every process's log tail when the test failed.
func (e *env) dumpLogs() {
	if !e.t.Failed() {
		return
	}
	for _, p := range e.procs {
		e.t.Logf("==== %s (exited %v: %v)\n%s", p.name, p.exited(), p.err, p.tail())
	}
}

// startNode starts a node as the tutorial does: spdk_tgt --wait-for-rpc
// (our fake), the rpc.py start-up steps, then the agent with the
// tutorial's flags.
func (e *env) startNode(name, role string, agentPort int, nvmfPort string) {
	e.t.Helper()
	h := e.host(name)
	sock := filepath.Join(e.state, name+".sock")
	_ = os.Remove(sock)
	e.spdk[name] = e.start(name, name+"-spdk", "vda-fakespdk", "--rpc-socket", sock, "--wait-for-rpc")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var c *spdk.Client
	require.Eventually(e.t, func() bool {
		var err error
		c, err = spdk.Dial(ctx, sock)
		return err == nil
	}, time.Minute, 20*time.Millisecond, "spdk socket of %s", name)
	defer func() { _ = c.Close() }()
	off := false // rpc.py bdev_set_options -d
	require.NoError(e.t, c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: &off}))
	require.NoError(e.t, c.FrameworkStartInit(ctx))
	require.NoError(e.t, c.FrameworkWaitInit(ctx))
	conf := fmt.Sprintf(`{"trtype":"tcp","traddr":"%s","adrfam":"ipv4","trsvcid":"%s"}`, h.IP, nvmfPort)
	e.agents[name] = e.start(name, name+"-agent", "vda-agent", "--role", role, "--listener", h.IP,
		"--port", strconv.Itoa(agentPort), "--sock-path", sock, "--listener-conf", conf,
		"--state-dir", filepath.Join(e.state, name+"-state"))
}

// kill kills a node's agent and fake SPDK at once (kill -9).
func (e *env) kill(name string) {
	e.agents[name].stop(syscall.SIGKILL)
	e.spdk[name].stop(syscall.SIGKILL)
}

// vda runs our CLI on host (the tutorial's vda_cli server, or a host).
func (e *env) vda(ctx context.Context, host string, args ...string) (string, error) {
	out, errOut, err := runOn(ctx, e.host(host), e.tlsEnv(host), filepath.Join(e.bin, "vda"), args...)
	if err != nil {
		return out, fmt.Errorf("vda %s: %v: %s", strings.Join(args, " "), err, errOut)
	}
	return out, nil
}

// daState is what `vda da get` says of a DA's controllers.
type daState struct {
	DaMsg struct {
		PrimaryCntlrID string `json:"primary_cntlr_id"`
		CntlrList      []struct {
			CntlrIdx int    `json:"cntlr_idx"`
			CnName   string `json:"cn_name"`
			Primary  bool   `json:"primary"`
			Health   string `json:"health"`
			Error    bool   `json:"error"`
			ErrorMsg string `json:"error_msg"`
		} `json:"cntlr_list"`
	} `json:"da_msg"`
}

// waitDA waits until controller primaryIdx of da is its healthy primary
// and, with all, every other controller is a healthy secondary.
func (e *env) waitDA(ctx context.Context, da string, primaryIdx int, all bool) {
	e.t.Helper()
	var last string
	ok := func() bool {
		out, err := e.vda(ctx, "cli", "--addr-port", tutorial.Portal, "da", "get", "--da-name", da)
		if err != nil {
			last = err.Error()
			return false
		}
		var st daState
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			last = err.Error()
			return false
		}
		for _, c := range st.DaMsg.CntlrList {
			healthy := c.Health == "healthy" && !c.Error
			if c.Primary != (c.CntlrIdx == primaryIdx) || (!healthy && (all || c.Primary)) {
				last = out
				return false
			}
		}
		return len(st.DaMsg.CntlrList) > 0
	}
	require.Eventually(e.t, ok, 2*time.Minute, 100*time.Millisecond, "%s never settled; last: %s", da, last)
}

// waitExpGet waits until the tutorial's exp get shows what the tutorial
// shows (no errors on any controller).
func (e *env) waitExpGet(ctx context.Context) {
	e.t.Helper()
	for line, want := range tutorial.ExpGet {
		args, err := tutorial.Args(line, "")
		require.NoError(e.t, err)
		var last error
		require.Eventually(e.t, func() bool {
			out, err := e.vda(ctx, "cli", args...)
			if err == nil {
				err = tutorial.CheckExpGet([]byte(out), want)
			}
			last = err
			return err == nil
		}, 2*time.Minute, 100*time.Millisecond, "%s: %v", line, &last)
	}
}

// TestTutorialOnSeparateHosts deploys seed 003 on one network namespace per
// server, each with its own certificates (vda certs, found through
// VDA_TLS_DIR, so every process runs with mutual TLS and roles), runs its
// vda_cli commands exactly as written (binary name aside),
// has host0 write and read over both controller paths, kills cn0 while
// host0 keeps writing, and checks that nothing written is lost and that cn0
// rejoins as a secondary.
func TestTutorialOnSeparateHosts(t *testing.T) {
	if err := netnstest.Available(); err != nil {
		t.Skip(err)
	}
	if _, err := pgBinDir(); err != nil {
		t.Skip(err)
	}
	e := &env{t: t, bin: binaries(t), logs: t.TempDir(), spdk: map[string]*proc{}, agents: map[string]*proc{}}
	var err error
	e.state, err = os.MkdirTemp("", "vda-e2e") // short: unix socket paths
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(e.state) })
	t.Cleanup(e.dumpLogs)
	e.net = netnstest.New(t)
	for _, s := range servers {
		e.net.AddHost(s.name, s.ip+"/24")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	e.makeCerts(ctx)
	startPostgres(t, e.logs, e.host("postgresql"))
	_, errOut, err := runOn(ctx, e.host("portal"), nil, filepath.Join(e.bin, "vda-db"), "--action", "create", "--db-uri", dbURI)
	require.NoError(t, err, errOut)
	e.start("portal", "portal", "vda-portal", "--listener", "192.168.0.11", "--port", "9520", "--db-uri", dbURI)
	e.start("monitor", "monitor", "vda-monitor", "--listener", "192.168.0.12", "--port", "9620", "--db-uri", dbURI)
	e.startNode("dn0", "dn", 9720, "4420")
	e.startNode("dn1", "dn", 9720, "4420")
	e.startNode("cn0", "cn", 9820, "4430")
	e.startNode("cn1", "cn", 9820, "4430")

	// The tutorial's commands, as written, from the cli server. The portal
	// may still be starting: retry the first one.
	for i, line := range tutorial.Lines() {
		args, err := tutorial.Args(line, "")
		require.NoError(t, err)
		if i == 0 {
			require.Eventually(t, func() bool { _, err := e.vda(ctx, "cli", args...); return err == nil },
				time.Minute, 100*time.Millisecond, "the portal never answered %s", line)
			continue
		}
		if strings.Contains(line, " da create ") {
			// aio and malloc PDs are placeable once the monitor has seen
			// them; the tutorial's malloc PDs are known at once.
			require.Eventually(t, func() bool { _, err := e.vda(ctx, "cli", args...); return err == nil },
				time.Minute, 100*time.Millisecond, "%s", line)
			continue
		}
		_, err = e.vda(ctx, "cli", args...)
		require.NoError(t, err, line)
	}
	e.waitDA(ctx, "da0", 0, true)
	e.waitDA(ctx, "da1", 0, true)
	e.waitExpGet(ctx)

	// host0 and host1 write and read through both controllers, each path
	// on its own and both together.
	hosts := map[string][]string{
		"host0": {"--nqn", "nqn.2016-06.io.spdk:vda-exp-da0-exp0", "--host-nqn", "nqn.2016-06.io.spdk:host0"},
		"host1": {"--nqn", "nqn.2016-06.io.spdk:vda-exp-da1-exp1", "--host-nqn", "nqn.2016-06.io.spdk:host1"},
	}
	both := []string{"--path", "192.168.0.16:4430", "--path", "192.168.0.17:4430"}
	for host, conn := range hosts {
		_, err := e.vda(ctx, host, append(append([]string{"host", "write", "--seed", "3", "--length", "4194304"}, conn...), both...)...)
		require.NoError(t, err)
		for _, path := range []string{"192.168.0.16:4430", "192.168.0.17:4430"} {
			_, err := e.vda(ctx, host, append([]string{"host", "verify", "--seed", "3", "--length", "4194304", "--path", path}, conn...)...)
			require.NoError(t, err, "%s through %s", host, path)
		}
	}
	// host1 may not reach host0's array.
	_, err = e.vda(ctx, "host1", "host", "verify", "--nqn", "nqn.2016-06.io.spdk:vda-exp-da0-exp0",
		"--host-nqn", "nqn.2016-06.io.spdk:host1", "--path", "192.168.0.16:4430", "--io-timeout", "2s")
	require.Error(t, err)

	// host0 keeps writing while cn0 (the primary) dies.
	result := filepath.Join(e.state, "run.json")
	writer := e.start("host0", "host0-run", append(append([]string{"vda", "host", "run", "--blocks", "4096",
		"--result", result}, hosts["host0"]...), both...)...)
	require.Eventually(t, func() bool { return strings.Contains(writer.tail(), `"acked"`) || writer.exited() },
		time.Minute, 50*time.Millisecond, "the writer reports no progress")
	require.False(t, writer.exited(), writer.tail())
	killed := time.Now()
	e.kill("cn0")
	e.waitDA(ctx, "da0", 1, false)
	t.Logf("da0 healthy on its new primary %v after cn0 died", time.Since(killed).Round(time.Millisecond))
	// Writes go on through the new primary: a fresh pattern write works.
	_, err = e.vda(ctx, "host0", append(append([]string{"host", "write", "--seed", "4", "--offset", "8388608",
		"--length", "1048576"}, hosts["host0"]...), both...)...)
	require.NoError(t, err)
	writer.stop(syscall.SIGTERM)
	require.NoError(t, writer.err, writer.tail())
	raw, err := os.ReadFile(result)
	require.NoError(t, err, writer.tail())
	var res struct {
		Acked    uint64 `json:"acked"`
		MaxGapNS int64  `json:"max_gap_ns"`
		Err      string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(raw, &res))
	require.Empty(t, res.Err)
	require.Positive(t, res.Acked)
	t.Logf("host0 acknowledged %d writes; longest gap %v", res.Acked, time.Duration(res.MaxGapNS))
	_, err = e.vda(ctx, "host0", append(append([]string{"host", "check", "--result", result}, hosts["host0"]...), both...)...)
	require.NoError(t, err, "a write acknowledged before, during or after the failover was lost")

	// cn0 comes back (its spdk_tgt restarted empty) and serves again as a
	// secondary: its path carries I/O.
	e.startNode("cn0", "cn", 9820, "4430")
	e.waitDA(ctx, "da0", 1, true)
	_, err = e.vda(ctx, "host0", append([]string{"host", "verify", "--seed", "4", "--offset", "8388608",
		"--length", "1048576", "--path", "192.168.0.16:4430"}, hosts["host0"]...)...)
	require.NoError(t, err, "read through the returned cn0")
}
