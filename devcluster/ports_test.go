package devcluster

import (
	"net"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

func TestPortsHoldUntilClosed(t *testing.T) {
	p := NewPorts()
	defer p.Close()
	r, err := p.take("127.0.0.1", 0)
	require.NoError(t, err)
	port := int(r.Addr().Port())
	require.Less(t, port, ephemeralLow(), "below the ephemeral range")
	require.GreaterOrEqual(t, port, 10000)
	again, err := p.take("127.0.0.1", port)
	require.NoError(t, err)
	require.Same(t, r, again, "a held port is handed out again")

	_, err = net.Listen("tcp", r.String())
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	other := NewPorts()
	defer other.Close()
	_, err = other.take("127.0.0.1", port)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "a port held elsewhere is refused")

	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "idempotent")
	_, err = r.Listen()
	require.ErrorIs(t, err, reserve.ErrClosed)
	_, err = p.take("127.0.0.1", 0)
	require.Error(t, err)
}
