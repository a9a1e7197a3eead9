package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

func testAgent(t *testing.T, e *dnEnv, edit func(*Config)) *Agent {
	t.Helper()
	cfg := DefaultConfig(RoleDN)
	cfg.SPDK, cfg.Listener, cfg.Insecure = e.c, e.listener, true
	if edit != nil {
		edit(&cfg)
	}
	a, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// testRequest is a's desired state st at generation gen.
func testRequest(a *Agent, gen int64, st *agentpb.DnState) *agentpb.SyncRequest {
	return &agentpb.SyncRequest{Generation: gen, StoreRevision: gen, NodeId: nvmeof.NewID(), AgentId: a.AgentID(),
		State: &agentpb.SyncRequest_Dn{Dn: st}}
}

func TestSyncsAreSerialised(t *testing.T) {
	e := newDNEnv(t)
	a := testAgent(t, e, nil)
	a.syncSlot <- struct{}{} // a Sync is running
	e.fake.ResetCounts()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := a.Sync(ctx, testRequest(a, 1, dnState(1, 1, nvmeof.NewID(), nvmeof.NewID(), 1)))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "waiting for the running sync")
	require.Zero(t, e.fake.TotalRPCs(), "the waiting Sync did not touch SPDK")
	<-a.syncSlot
	_, err = a.Sync(context.Background(), testRequest(a, 1, dnState(1, 1, nvmeof.NewID(), nvmeof.NewID(), 1)))
	require.NoError(t, err)
}

func TestSyncTimeoutBoundsAHungSPDK(t *testing.T) {
	e := newDNEnv(t)
	a := testAgent(t, e, func(c *Config) { c.SyncTimeout = 200 * time.Millisecond })
	st := dnState(1, 2, nvmeof.NewID(), nvmeof.NewID(), 1)
	e.fake.Inject("nvmf_create_subsystem", spdktest.Fault{Hang: true})
	rep, err := a.Sync(context.Background(), testRequest(a, 1, st))
	require.NoError(t, err, "the reply reports the objects that did not finish")
	require.NotEmpty(t, failures(rep.Objects))
	for _, o := range failures(rep.Objects) {
		require.Contains(t, o.Error, "deadline exceeded")
	}
	e.fake.ClearFaults()
	e.restart()
	rep, err = a.Sync(context.Background(), testRequest(a, 1, st))
	require.NoError(t, err)
	require.Empty(t, failures(rep.Objects))
	e.requireConverged(st)
}

func TestRecoveryTurnsPanicsIntoInternal(t *testing.T) {
	e := newDNEnv(t)
	a := testAgent(t, e, nil)
	h := func(context.Context, any) (any, error) { panic("boom") }
	_, err := a.recovery(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x"}, h)
	require.ErrorIs(t, err, ErrInternal)
	require.Equal(t, codes.Internal, Status(err).Code())
}

func TestStatusMapping(t *testing.T) {
	for err, c := range map[error]codes.Code{
		fmt.Errorf("x: %w", ErrInvalidArgument):                  codes.InvalidArgument,
		fmt.Errorf("x: %w", ErrStale):                            codes.FailedPrecondition,
		fmt.Errorf("x: %w", ErrWrongNode):                        codes.FailedPrecondition,
		fmt.Errorf("x: %w: %w", ErrUnavailable, errors.New("y")): codes.Unavailable,
		fmt.Errorf("x: %w", ErrPermissionDenied):                 codes.PermissionDenied,
		fmt.Errorf("x: %w", context.Canceled):                    codes.Canceled,
		fmt.Errorf("x: %w", context.DeadlineExceeded):            codes.DeadlineExceeded,
		fmt.Errorf("x: %w", ErrState):                            codes.Internal,
		errors.New("other"):                                      codes.Internal,
	} {
		require.Equal(t, c, Status(err).Code(), "%v", err)
		require.Equal(t, err.Error(), Status(err).Message())
	}
	require.Nil(t, Status(nil))
}

func TestConfigValidation(t *testing.T) {
	l, err := nvmeof.NewTransportID("tcp", "", "192.168.0.14", "4420")
	require.NoError(t, err)
	good := DefaultConfig(RoleDN)
	good.SPDKAddr, good.Listener, good.Insecure = "/tmp/dn.sock", l, true
	_, err = good.withDefaults()
	require.NoError(t, err)
	for name, edit := range map[string]func(*Config){
		"role":         func(c *Config) { c.Role = "pd" },
		"no spdk":      func(c *Config) { c.SPDKAddr = "" },
		"no listener":  func(c *Config) { c.Listener = nvmeof.TransportID{} },
		"unnormalised": func(c *Config) { c.Listener.TrType = "TCP" },
		"node id":      func(c *Config) { c.NodeID = "dn0" },
		"allow":        func(c *Config) { c.AllowedCallers = []string{"monitor.example"} },
		"allow zone":   func(c *Config) { c.AllowedCallers = []string{"fe80::1%eth0"} },
		"tls":          func(c *Config) { c.TLS = mtls.Config{CertFile: "c"} },
		"timeout":      func(c *Config) { c.SyncTimeout = -1 },
		"inflight":     func(c *Config) { c.MaxInFlight = -1 },
		"listen addr":  func(c *Config) { c.ListenAddr = "9720" },
		"no tls":       func(c *Config) { c.Insecure = false },
		"allow only":   func(c *Config) { c.Insecure, c.AllowedCallers = false, []string{"10.0.0.1"} },
	} {
		c := good
		edit(&c)
		_, err := New(c)
		require.ErrorIs(t, err, ErrConfig, name)
	}
	// Zero values are the defaults; an SPDK client replaces the address.
	c := Config{Role: RoleCN, SPDK: &spdk.Client{}, Listener: l, Insecure: true}
	c, err = c.withDefaults()
	require.NoError(t, err)
	require.Equal(t, DefaultSyncTimeout, c.SyncTimeout)
	require.Equal(t, DefaultMaxInFlight, c.MaxInFlight)
	require.Equal(t, DefaultListenAddr, c.ListenAddr)
	prefixes, err := parseAllowList([]string{"10.0.0.1", "::ffff:10.0.0.2", "fd00::/64", "192.168.0.7/24"})
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1/32 10.0.0.2/32 fd00::/64 192.168.0.0/24", fmt.Sprint(prefixes[0], " ", prefixes[1], " ", prefixes[2], " ", prefixes[3]))
}

func TestGuardState(t *testing.T) {
	dir := t.TempDir()
	g, err := loadGuard(dir)
	require.NoError(t, err)
	require.NoError(t, g.check(1, nil))
	da := nvmeof.NewID()
	require.NoError(t, g.accept(4, map[string]int64{da: 2}))
	require.EqualValues(t, 4, g.lastApplied())
	require.ErrorIs(t, g.check(3, nil), ErrStale)
	require.ErrorIs(t, g.check(5, map[string]int64{da: 1}), ErrStale)
	require.NoError(t, g.check(4, map[string]int64{da: 2, nvmeof.NewID(): 1}))

	g2, err := loadGuard(dir)
	require.NoError(t, err)
	require.Zero(t, g2.lastApplied(), "Health counts what this process applied")
	require.ErrorIs(t, g2.check(3, nil), ErrStale)
	require.ErrorIs(t, g2.check(9, map[string]int64{da: 1}), ErrStale)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")

	// A DA the state no longer names is forgotten.
	require.NoError(t, g2.accept(5, map[string]int64{}))
	require.NoError(t, g2.check(6, map[string]int64{da: 1}))

	// A damaged file stops the agent rather than letting stale state through.
	require.NoError(t, os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o600))
	_, err = loadGuard(dir)
	require.ErrorIs(t, err, ErrState)
	require.NoError(t, os.WriteFile(filepath.Join(dir, stateFile), []byte(`{"version":2,"generation":1}`), 0o600))
	_, err = loadGuard(dir)
	require.ErrorIs(t, err, ErrState)

	// A write that fails leaves the guard as it was.
	other := t.TempDir()
	g3, err := loadGuard(other)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(other, stateFile, "x"), 0o700)) // rename cannot replace it
	require.ErrorIs(t, g3.accept(2, nil), ErrState)
	require.NoError(t, g3.check(1, nil))
	require.Zero(t, g3.lastApplied())
}

func TestHealthBudget(t *testing.T) {
	require.Equal(t, 5*time.Second, healthBudget(context.Background(), 5*time.Second), "no caller deadline")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	require.Equal(t, 5*time.Second, healthBudget(ctx, 5*time.Second), "the limit is shorter")
	ctx, cancel = context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	got := healthBudget(ctx, 5*time.Second)
	require.LessOrEqual(t, got, 2250*time.Millisecond)
	require.Greater(t, got, 2*time.Second, "nine tenths of what is left")
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	require.Zero(t, healthBudget(ctx, 5*time.Second), "already late")
}
