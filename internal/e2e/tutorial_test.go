package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/multihost"
	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/internal/testproc"
	"github.com/vda-io/vda/spdk"
)

// env is the tutorial's deployment with the fake SPDK on every node.
type env struct {
	*multihost.Env
	t      *testing.T
	spdk   map[string]*testproc.Proc
	agents map[string]*testproc.Proc
}

// startNode starts a node as the tutorial does: spdk_tgt --wait-for-rpc
// (our fake), the rpc.py start-up steps, then the agent with the
// tutorial's flags.
func (e *env) startNode(name, role string) {
	e.t.Helper()
	sock := filepath.Join(e.State, name+".sock")
	_ = os.Remove(sock)
	e.spdk[name] = e.Start(e.t, name, name+"-spdk", "vda-fakespdk", "--rpc-socket", sock, "--wait-for-rpc")
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
	e.agents[name] = e.StartAgent(e.t, name, role, sock)
}

// kill kills a node's agent and fake SPDK at once (kill -9).
func (e *env) kill(name string) {
	_ = e.agents[name].Kill()
	_ = e.spdk[name].Kill()
}

// TestTutorialOnSeparateHosts deploys seed 003 on one network namespace per
// server, runs its vda_cli commands exactly as written (binary name aside),
// has host0 write and read over both controller paths, kills cn0 while
// host0 keeps writing, and checks that nothing written is lost and that cn0
// rejoins as a secondary.
func TestTutorialOnSeparateHosts(t *testing.T) {
	if err := netnstest.Available(); err != nil {
		t.Skip(err)
	}
	if err := multihost.PostgresAvailable(); err != nil {
		t.Skip(err)
	}
	e := &env{Env: multihost.New(t), t: t, spdk: map[string]*testproc.Proc{}, agents: map[string]*testproc.Proc{}}
	t.Cleanup(func() { e.DumpLogs(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	e.StartControlPlane(t, ctx)
	for _, n := range []struct{ name, role string }{{"dn0", "dn"}, {"dn1", "dn"}, {"cn0", "cn"}, {"cn1", "cn"}} {
		e.startNode(n.name, n.role)
	}

	// The tutorial's commands, as written, from the cli server.
	e.Tutorial(t, ctx, nil)
	e.WaitDA(t, ctx, "da0", 0, true)
	e.WaitDA(t, ctx, "da1", 0, true)
	e.WaitExpGet(t, ctx)

	// host0 and host1 write and read through both controllers, each path
	// on its own and both together.
	hosts := map[string][]string{
		"host0": {"--nqn", "nqn.2016-06.io.spdk:vda-exp-da0-exp0", "--host-nqn", "nqn.2016-06.io.spdk:host0"},
		"host1": {"--nqn", "nqn.2016-06.io.spdk:vda-exp-da1-exp1", "--host-nqn", "nqn.2016-06.io.spdk:host1"},
	}
	both := []string{"--path", "192.168.0.16:4430", "--path", "192.168.0.17:4430"}
	for host, conn := range hosts {
		_, err := e.VDAHost(ctx, host, append(append([]string{"write", "--seed", "3", "--length", "4194304"}, conn...), both...)...)
		require.NoError(t, err)
		for _, path := range []string{"192.168.0.16:4430", "192.168.0.17:4430"} {
			_, err := e.VDAHost(ctx, host, append([]string{"verify", "--seed", "3", "--length", "4194304", "--path", path}, conn...)...)
			require.NoError(t, err, "%s through %s", host, path)
		}
	}
	// host1 may not reach host0's array.
	_, err := e.VDAHost(ctx, "host1", "verify", "--nqn", "nqn.2016-06.io.spdk:vda-exp-da0-exp0",
		"--host-nqn", "nqn.2016-06.io.spdk:host1", "--path", "192.168.0.16:4430", "--io-timeout", "2s")
	require.Error(t, err)

	// host0 keeps writing while cn0 (the primary) dies, on a ring of 8 MiB
	// from offset 0: below the fresh pattern written at 8 MiB next (a
	// larger ring overwrote it, and its check then failed).
	result := filepath.Join(e.State, "run.json")
	writer := e.Start(t, "host0", "host0-run", append(append([]string{"vda-host", "run", "--blocks", "2048",
		"--result", result}, hosts["host0"]...), both...)...)
	require.Eventually(t, func() bool { return strings.Contains(writer.Tail(4000), `"acked"`) || writer.Exited() },
		time.Minute, 50*time.Millisecond, "the writer reports no progress")
	require.False(t, writer.Exited(), writer.Tail(4000))
	killed := time.Now()
	e.kill("cn0")
	e.WaitDA(t, ctx, "da0", 1, false)
	t.Logf("da0 healthy on its new primary %v after cn0 died", time.Since(killed).Round(time.Millisecond))
	// Writes go on through the new primary: a fresh pattern write works.
	_, err = e.VDAHost(ctx, "host0", append(append([]string{"write", "--seed", "4", "--offset", "8388608",
		"--length", "1048576"}, hosts["host0"]...), both...)...)
	require.NoError(t, err)
	require.NoError(t, writer.Stop(), writer.Tail(4000))
	raw, err := os.ReadFile(result)
	require.NoError(t, err, writer.Tail(4000))
	var res struct {
		Acked    uint64 `json:"acked"`
		MaxGapNS int64  `json:"max_gap_ns"`
		Err      string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(raw, &res))
	require.Empty(t, res.Err)
	require.Positive(t, res.Acked)
	t.Logf("host0 acknowledged %d writes; longest gap %v", res.Acked, time.Duration(res.MaxGapNS))
	_, err = e.VDAHost(ctx, "host0", append(append([]string{"check", "--result", result}, hosts["host0"]...), both...)...)
	require.NoError(t, err, "a write acknowledged before, during or after the failover was lost")

	// cn0 comes back (its spdk_tgt restarted empty) and serves again as a
	// secondary: its path carries I/O.
	e.startNode("cn0", "cn")
	e.WaitDA(t, ctx, "da0", 1, true)
	_, err = e.VDAHost(ctx, "host0", append([]string{"verify", "--seed", "4", "--offset", "8388608",
		"--length", "1048576", "--path", "192.168.0.16:4430"}, hosts["host0"]...)...)
	require.NoError(t, err, "read through the returned cn0")
}
