package agent_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/spdk/spdktest"
)

// Health tells a slow SPDK from a gone one, which the monitor needs to tell
// a busy node from a dead one: DeadlineExceeded (with the agent's own
// message, so not the caller's deadline) for an SPDK that sits on the
// request, Unavailable for one whose socket is gone or refuses. A slow SPDK
// that answers again is the same instance: nothing restarted.
func TestHealthTellsSlowFromGone(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleCN, fake)
	cfg.HealthTimeout = 200 * time.Millisecond
	r := srvStart(t, cfg)
	c := srvDial(t, r.addr)
	ctx := srvCtx(t)
	before, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)

	fake.Inject("spdk_get_version", spdktest.Fault{Latency: 2 * time.Second, Times: 1})
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "spdk did not answer in time")
	require.Eventually(t, func() bool {
		h, err := c.Health(ctx, &agentpb.HealthRequest{})
		return err == nil && h.InstanceId == before.InstanceId
	}, 30*time.Second, 10*time.Millisecond, "answers again, as the same instance")

	// Hung, then gone: the SPDK connection closes, Health says Unavailable.
	fake.Inject("spdk_get_version", spdktest.Fault{Hang: true})
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	fake.Crash() // closes the connection and removes the socket
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "no such file")
	// A socket file nobody listens on: connection refused.
	lis, err := net.Listen("unix", fake.SockPath())
	require.NoError(t, err)
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, lis.Close())
	t.Cleanup(func() { _ = os.Remove(fake.SockPath()) })
	_, err = c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "connection refused")
}

// The agent answers "slow" before the caller's deadline, so a caller hears
// from a live agent rather than nothing.
func TestHealthAnswersBeforeTheCallersDeadline(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleDN, fake)
	cfg.HealthTimeout = time.Hour
	r := srvStart(t, cfg)
	c := srvDial(t, r.addr)
	fake.Inject("spdk_get_version", spdktest.Fault{Hang: true})
	ctx, cancel := context.WithTimeout(srvCtx(t), 3*time.Second)
	defer cancel()
	_, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "spdk did not answer in time", "the agent's answer, not the caller's deadline")
}

// Health calls that arrive while SPDK is slow share the request in flight
// instead of queueing more behind it: five probes, one spdk_get_version,
// and every probe gets the answer.
func TestHealthSharesTheProbeInFlight(t *testing.T) {
	fake := srvFake(t)
	r := srvStart(t, srvConfig(t, agent.RoleDN, fake))
	c := srvDial(t, r.addr)
	ctx := srvCtx(t)
	_, err := c.Health(ctx, &agentpb.HealthRequest{})
	require.NoError(t, err)
	before := fake.RPCCount("spdk_get_version")
	fake.Inject("spdk_get_version", spdktest.Fault{Latency: 3 * time.Second})
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err := c.Health(ctx, &agentpb.HealthRequest{})
			errs <- err
		}()
	}
	for range 5 {
		require.NoError(t, <-errs)
	}
	require.Equal(t, before+1, fake.RPCCount("spdk_get_version"))
}

// A stopping agent answers the Health calls waiting on a hung SPDK at once,
// as Unavailable: it is going away, and its shutdown does not wait for them.
func TestHealthEndsWhenTheAgentStops(t *testing.T) {
	fake := srvFake(t)
	cfg := srvConfig(t, agent.RoleCN, fake)
	cfg.ShutdownTimeout = time.Minute
	r := srvStart(t, cfg)
	c := srvDial(t, r.addr)
	before := fake.RPCCount("spdk_get_version")
	fake.Inject("spdk_get_version", spdktest.Fault{Hang: true})
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(srvCtx(t), time.Hour)
		defer cancel()
		_, err := c.Health(ctx, &agentpb.HealthRequest{})
		errc <- err
	}()
	require.Eventually(t, func() bool { return fake.RPCCount("spdk_get_version") > before }, 10*time.Second, time.Millisecond)
	require.NoError(t, r.stop())
	err := <-errc
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "agent stopping")
}
