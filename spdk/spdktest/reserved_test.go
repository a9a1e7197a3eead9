package spdktest

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/fabric"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

const (
	resNQN  = "nqn.2016-06.io.vda:reserved"
	resHost = "nqn.2016-06.io.vda:host-r"
)

// exportOn exports a malloc bdev as resNQN to resHost through a listener on
// trid, as an agent does (after a restart too: everything is made anew).
func exportOn(rc *rawConn, trid fabric.TransportID) {
	rc.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	rc.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 256})
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": resNQN})
	rc.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": resNQN, "namespace": map[string]any{"bdev_name": "m"}})
	rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": resNQN, "listen_address": listenAddr(trid)})
	rc.ok("nvmf_subsystem_add_host", map[string]any{"nqn": resNQN, "host": resHost})
}

func listenAddr(trid fabric.TransportID) map[string]any {
	return map[string]any{"trtype": trid.TrType, "adrfam": trid.AdrFam, "traddr": trid.TrAddr, "trsvcid": trid.TrSvcID}
}

// hostConnects requires that a host reaches resNQN through trid.
func hostConnects(t *testing.T, trid fabric.TransportID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := fabric.Dial(ctx, trid, resNQN, resHost)
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

// hostRefused requires that a connection to trid is refused (RST), as by a
// host where no spdk_tgt listens, and that no other socket can take the
// port meanwhile.
func hostRefused(t *testing.T, trid fabric.TransportID) {
	t.Helper()
	addr := net.JoinHostPort(trid.TrAddr, trid.TrSvcID)
	c, err := net.Dial("tcp", addr)
	if err == nil {
		_ = c.Close()
	}
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	_, err = net.Listen("tcp", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "the port stays reserved")
}

// A reserved listener address behaves like a port of a real spdk_tgt:
// served while a listener is on it, refused after the listener is
// removed, while the target is crashed or killed, and after a restart
// until the listener is added again; and nobody else can take it.
func TestReservedListenerAcrossCrashAndRestart(t *testing.T) {
	srv := NewServer(t)
	trid, err := srv.Reserve("127.0.0.1")
	require.NoError(t, err)
	require.Equal(t, "tcp", trid.TrType)
	require.Equal(t, "ipv4", trid.AdrFam)
	hostRefused(t, trid) // reserved, nothing listens yet

	rc := dialRaw(t, srv.SockPath())
	exportOn(rc, trid)
	hostConnects(t, trid)
	// Another subsystem on the same address shares the socket, as in SPDK,
	// and leaving it does not close the socket.
	rc.ok("nvmf_create_subsystem", map[string]any{"nqn": resNQN + "-2"})
	rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": resNQN + "-2", "listen_address": listenAddr(trid)})
	rc.ok("nvmf_delete_subsystem", map[string]any{"nqn": resNQN + "-2"})
	hostConnects(t, trid)

	// Removed and added again: refused, then served on the same port.
	rc.ok("nvmf_subsystem_remove_listener", map[string]any{"nqn": resNQN, "listen_address": listenAddr(trid)})
	hostRefused(t, trid)
	rc.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": resNQN, "listen_address": listenAddr(trid)})
	hostConnects(t, trid)

	// Crash: refused. Restart: refused until the listener is added again.
	srv.Crash()
	hostRefused(t, trid)
	require.NoError(t, srv.Restart(false))
	hostRefused(t, trid)
	rc = dialRaw(t, srv.SockPath())
	exportOn(rc, trid)
	hostConnects(t, trid)

	// spdk_kill_instance: the same.
	rc.ok("spdk_kill_instance", map[string]any{"sig_name": "SIGTERM"})
	<-srv.Exited()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", net.JoinHostPort(trid.TrAddr, trid.TrSvcID))
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, 30*time.Second, 5*time.Millisecond)
	hostRefused(t, trid)
	require.NoError(t, srv.Restart(false))
	exportOn(dialRaw(t, srv.SockPath()), trid)
	hostConnects(t, trid)
}

// Ports in Config.Reserved belong to the caller: a target that closes
// leaves them held, and the next target (a restarted node) serves on them.
func TestReservedPortsOutliveTheTarget(t *testing.T) {
	p := reserve.ForTest(t, "127.0.0.1")
	trid := reservedTrid(p)
	a := NewServer(t, WithReserved(p))
	exportOn(dialRaw(t, a.SockPath()), trid)
	hostConnects(t, trid)

	// Another target cannot listen there while a does.
	b := NewServer(t, WithReserved(p))
	rb := dialRaw(t, b.SockPath())
	rb.ok("nvmf_create_transport", map[string]any{"trtype": "TCP"})
	rb.ok("nvmf_create_subsystem", map[string]any{"nqn": resNQN})
	rb.fails(-32602, "nvmf_subsystem_add_listener", map[string]any{"nqn": resNQN, "listen_address": listenAddr(trid)})

	require.NoError(t, a.Close())
	hostRefused(t, trid)
	rb.ok("nvmf_subsystem_add_listener", map[string]any{"nqn": resNQN, "listen_address": listenAddr(trid)})
	rb.ok("bdev_malloc_create", map[string]any{"name": "m", "block_size": 4096, "num_blocks": 256})
	rb.ok("nvmf_subsystem_add_ns", map[string]any{"nqn": resNQN, "namespace": map[string]any{"bdev_name": "m"}})
	rb.ok("nvmf_subsystem_add_host", map[string]any{"nqn": resNQN, "host": resHost})
	hostConnects(t, trid)
	require.NoError(t, b.Close())
	ln, err := p.Listen()
	require.NoError(t, err, "a closed target leaves the reservation to its owner")
	require.NoError(t, ln.Close())
}

// Close releases the ports the target reserved itself.
func TestCloseReleasesReservedPorts(t *testing.T) {
	srv := NewServer(t)
	trid, err := srv.Reserve("127.0.0.1")
	require.NoError(t, err)
	exportOn(dialRaw(t, srv.SockPath()), trid)
	hostConnects(t, trid)
	require.NoError(t, srv.Close())
	_, err = srv.Reserve("127.0.0.1")
	require.ErrorIs(t, err, ErrClosed)
	port, err := strconv.Atoi(trid.TrSvcID)
	require.NoError(t, err)
	p, err := reserve.TCP("127.0.0.1", port)
	require.NoError(t, err, "the port is free again")
	require.NoError(t, p.Close())
}

func TestReservedConfigErrors(t *testing.T) {
	_, err := New(Config{SockPath: t.TempDir() + "/s.sock", Reserved: []*reserve.Port{nil}})
	require.ErrorIs(t, err, ErrConfig)
	p := reserve.ForTest(t, "127.0.0.1")
	_, err = New(Config{SockPath: t.TempDir() + "/s.sock", Reserved: []*reserve.Port{p, p}})
	require.ErrorIs(t, err, ErrConfig)
	_, err = NewServer(t).Reserve("localhost")
	require.ErrorIs(t, err, reserve.ErrAddr)
}
