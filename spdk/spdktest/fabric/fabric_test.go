package fabric

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

const (
	subNQN = "nqn.2016-06.io.spdk:cnode1"
	host1  = "nqn.2016-06.io.spdk:host1"
	host2  = "nqn.2016-06.io.spdk:host2"
)

// policy is a tiny control plane: one subsystem, an allow-list, one
// namespace.
type policy struct {
	mu      sync.Mutex
	allowed map[string]bool
	dev     blockdev.Device
	next    uint16
}

func (p *policy) admit(sub, host string, local TransportID) (ControllerInfo, []Namespace, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case sub == "nqn.bad":
		return ControllerInfo{}, nil, errors.New("subsystem is paused")
	case sub != subNQN:
		return ControllerInfo{}, nil, fmt.Errorf("%w: %s", ErrNoSubsystem, sub)
	case !p.allowed[host]:
		return ControllerInfo{}, nil, fmt.Errorf("%w: %s", ErrNotAllowed, host)
	}
	p.next++
	return ControllerInfo{CntlID: p.next, SerialNumber: "SN1", ModelNumber: "VDA", ANAReporting: true, ANAState: "optimized"},
		[]Namespace{{NSID: 1, NGUID: "00112233445566778899AABBCCDDEEFF", UUID: "00112233-4455-6677-8899-aabbccddeeff", Dev: p.dev}}, nil
}

func loopback() TransportID {
	return TransportID{TrType: "TCP", AdrFam: "IPv4", TrAddr: "127.0.0.1", TrSvcID: "0"}
}

// newTarget starts a target serving dev to host1 and host2.
func newTarget(t testing.TB, dev blockdev.Device) (*Target, TransportID) {
	t.Helper()
	p := &policy{allowed: map[string]bool{host1: true, host2: true}, dev: dev}
	tg := NewTarget(p.admit, nil)
	t.Cleanup(func() { _ = tg.Close() })
	trid, err := tg.ListenTCP(loopback())
	require.NoError(t, err)
	return tg, trid
}

func dial(t testing.TB, trid TransportID, host string) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), trid, subNQN, host)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func waitDone(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("path loss not detected")
	}
}

func requireUp(t *testing.T, c *Conn) {
	t.Helper()
	_, err := c.Identify()
	require.NoError(t, err)
	select {
	case <-c.Done():
		t.Fatal("connection unexpectedly lost")
	default:
	}
}

func TestConnectAdmittedAndRefused(t *testing.T) {
	_, trid := newTarget(t, blockdev.NewMemory(512, 2048))
	ctx := context.Background()

	c := dial(t, trid, host1)
	info := c.Info()
	require.Equal(t, uint16(1), info.CntlID)
	require.Equal(t, subNQN, info.SubNQN)
	require.Equal(t, "optimized", info.ANAState)
	require.Equal(t, []NamespaceInfo{{NSID: 1, NGUID: "00112233445566778899AABBCCDDEEFF",
		UUID: "00112233-4455-6677-8899-aabbccddeeff", BlockSize: 512, NumBlocks: 2048}}, info.Namespaces)
	require.NoError(t, c.Err())

	_, err := Dial(ctx, trid, subNQN, "nqn.2016-06.io.spdk:stranger")
	require.ErrorIs(t, err, ErrNotAllowed)
	require.ErrorContains(t, err, "stranger")
	_, err = Dial(ctx, trid, "nqn.other", host1)
	require.ErrorIs(t, err, ErrNoSubsystem)
	_, err = Dial(ctx, trid, "nqn.bad", host1)
	require.ErrorIs(t, err, ErrRejected)
	require.ErrorContains(t, err, "paused")
	_, err = Dial(ctx, TransportID{TrType: "RDMA", TrAddr: "127.0.0.1", TrSvcID: "1"}, subNQN, host1)
	require.ErrorIs(t, err, ErrInvalid)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Dial(cctx, trid, subNQN, host1)
	require.ErrorIs(t, err, context.Canceled)
}

func TestReadWriteOverTCP(t *testing.T) {
	dev := blockdev.NewMemory(512, 16384) // 8 MiB
	_, trid := newTarget(t, dev)
	c := dial(t, trid, host1)

	data := pattern(1, 128<<10)
	n, err := c.WriteAt(1, data, 4096)
	require.NoError(t, err)
	require.Equal(t, len(data), n)
	got := make([]byte, len(data))
	_, err = dev.ReadAt(got, 4096)
	require.NoError(t, err)
	require.Equal(t, data, got, "the bytes reached the target's device")
	got2 := make([]byte, len(data))
	_, err = c.ReadAt(1, got2, 4096)
	require.NoError(t, err)
	require.Equal(t, data, got2)

	// Larger than one frame: split and reassembled.
	big := pattern(2, MaxBody+8192)
	d := c.Device(1)
	require.Equal(t, uint32(512), d.BlockSize())
	require.Equal(t, uint64(16384), d.NumBlocks())
	_, err = d.WriteAt(big, 0)
	require.NoError(t, err)
	gotBig := make([]byte, len(big))
	_, err = d.ReadAt(gotBig, 0)
	require.NoError(t, err)
	require.Equal(t, big, gotBig)
	require.NoError(t, blockdev.WriteZeroes(d, 0, 8192))
	_, err = dev.ReadAt(got[:8192], 0)
	require.NoError(t, err)
	require.Equal(t, make([]byte, 8192), got[:8192])

	_, err = c.ReadAt(1, make([]byte, 512), 8<<20)
	require.ErrorIs(t, err, blockdev.ErrOutOfRange)
	require.ErrorIs(t, err, ErrIO)
	_, err = c.WriteAt(1, make([]byte, 100), 0)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = c.ReadAt(9, make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrNoNamespace)
	require.Zero(t, c.Device(9).NumBlocks())
	requireUp(t, c) // errors do not break the connection
}

func TestManyRequestsInFlight(t *testing.T) {
	dev := blockdev.NewMemory(4096, 4096)
	_, trid := newTarget(t, dev)
	c := dial(t, trid, host1)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			off := int64(i) * 64 << 10
			p := pattern(uint64(i), 64<<10)
			if _, err := c.WriteAt(1, p, off); err != nil {
				t.Error(err)
				return
			}
			q := make([]byte, len(p))
			if _, err := c.ReadAt(1, q, off); err != nil {
				t.Error(err)
				return
			}
			if string(p) != string(q) {
				t.Errorf("request %d read back other bytes", i)
			}
		})
	}
	wg.Wait()
}

func TestDisconnectHostDropsExactlyThatHost(t *testing.T) {
	tg, trid := newTarget(t, blockdev.NewMemory(512, 64))
	c1, c2 := dial(t, trid, host1), dial(t, trid, host2)
	require.Len(t, tg.Sessions(subNQN), 2)

	tg.DisconnectHost(subNQN, host1)
	waitDone(t, c1)
	require.ErrorIs(t, c1.Err(), ErrDisconnected)
	_, err := c1.ReadAt(1, make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrDisconnected)
	requireUp(t, c2)
	require.Eventually(t, func() bool {
		s := tg.Sessions(subNQN)
		return len(s) == 1 && s[0].HostNQN == host2
	}, 5*time.Second, time.Millisecond)

	tg.DisconnectSubsystem(subNQN)
	waitDone(t, c2)
	require.Empty(t, tg.Sessions(""))
}

func TestUnlistenDropsItsSessions(t *testing.T) {
	tg, a := newTarget(t, blockdev.NewMemory(512, 64))
	b, err := tg.ListenTCP(loopback())
	require.NoError(t, err)
	require.Len(t, tg.Listeners(), 2)
	ca, cb := dial(t, a, host1), dial(t, b, host1)
	require.ErrorIs(t, tg.Listen(a), ErrExists)

	require.NoError(t, tg.Unlisten(a))
	waitDone(t, ca)
	requireUp(t, cb)
	require.Equal(t, []TransportID{b}, tg.Listeners())
	_, err = Dial(context.Background(), a, subNQN, host1)
	require.ErrorIs(t, err, ErrRefused)
	require.ErrorIs(t, tg.Unlisten(a), ErrNoListener)
	s := tg.Sessions(subNQN)
	require.Len(t, s, 1)
	require.Equal(t, b, s[0].Local)
}

func TestCloseDropsEverythingAndRefuses(t *testing.T) {
	tg, trid := newTarget(t, blockdev.NewMemory(512, 64))
	c := dial(t, trid, host1)
	require.NoError(t, tg.Close())
	waitDone(t, c)
	require.ErrorIs(t, c.Err(), ErrDisconnected)
	_, err := Dial(context.Background(), trid, subNQN, host1)
	require.ErrorIs(t, err, ErrRefused)
	require.NoError(t, tg.Close(), "idempotent")
	require.ErrorIs(t, tg.Listen(loopback()), ErrClosed)
}

func TestListenErrors(t *testing.T) {
	tg, trid := newTarget(t, blockdev.NewMemory(512, 64))
	other := NewTarget(nil, nil)
	defer other.Close()
	require.ErrorIs(t, other.Listen(trid), ErrAddrInUse)
	require.ErrorIs(t, tg.Listen(TransportID{TrType: "RDMA", TrAddr: "127.0.0.1", TrSvcID: "0"}), ErrInvalid)
	require.ErrorIs(t, tg.Listen(TransportID{TrType: "tcp", TrAddr: "127.0.0.1"}), ErrInvalid)

	// A target without an admit policy has no subsystems.
	o, err := other.ListenTCP(loopback())
	require.NoError(t, err)
	_, err = Dial(context.Background(), o, subNQN, host1)
	require.ErrorIs(t, err, ErrNoSubsystem)
}

// A target listening through a ListenFunc (a reserved port) listens, stops
// and listens again on the same port; a listen that finds the port taken is
// ErrAddrInUse.
func TestListenFunc(t *testing.T) {
	p := reserve.ForTest(t, "127.0.0.1")
	listen := func(addr string) (net.Listener, error) {
		if addr != p.String() {
			return net.Listen("tcp", addr)
		}
		return p.Listen()
	}
	pol := &policy{allowed: map[string]bool{host1: true}, dev: blockdev.NewMemory(512, 64)}
	tg := NewTarget(pol.admit, nil, WithListenFunc(listen))
	defer tg.Close()
	trid := TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: "127.0.0.1", TrSvcID: fmt.Sprint(p.Addr().Port())}
	for range 2 {
		require.NoError(t, tg.Listen(trid))
		require.NoError(t, dial(t, trid, host1).Close())
		require.NoError(t, tg.Unlisten(trid))
		_, err := Dial(context.Background(), trid, subNQN, host1)
		require.ErrorIs(t, err, ErrRefused)
	}
	require.NoError(t, tg.Listen(trid))
	other := NewTarget(nil, nil, WithListenFunc(listen))
	defer other.Close()
	require.ErrorIs(t, other.Listen(trid), ErrAddrInUse, "one listener at a time")
	require.NoError(t, tg.Close())
	_, err := Dial(context.Background(), trid, subNQN, host1)
	require.ErrorIs(t, err, ErrRefused, "a closed (crashed) target refuses")
	require.NoError(t, other.Listen(trid), "the port is free for the next target")
	o, err := other.ListenTCP(loopback())
	require.NoError(t, err, "other addresses bind as before")
	require.NotEqual(t, "0", o.TrSvcID)
}

func TestANAStateReachesHosts(t *testing.T) {
	tg, trid := newTarget(t, blockdev.NewMemory(512, 64))
	c := dial(t, trid, host1)
	tg.SetANAState(subNQN, trid, "inaccessible")
	require.Eventually(t, func() bool { return c.Info().ANAState == "inaccessible" }, 5*time.Second, time.Millisecond)
	info, err := c.Identify()
	require.NoError(t, err)
	require.Equal(t, "inaccessible", info.ANAState)
	require.Equal(t, "inaccessible", tg.Sessions(subNQN)[0].ANAState)
	c2 := dial(t, trid, host2)
	require.Equal(t, "inaccessible", c2.Info().ANAState, "later hosts see it too")
}

// fakePeer accepts one host, answers its connect, then runs fn on the
// raw connection.
func fakePeer(t *testing.T, fn func(net.Conn)) TransportID {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h, _, err := readFrame(newFrameReader(c))
		if err != nil {
			return
		}
		if writeFrame(c, header{op: opConnect | opReply, tag: h.tag}, []byte(`{"cntlid":7}`)) != nil {
			return
		}
		fn(c)
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return TransportID{TrType: "TCP", TrAddr: "127.0.0.1", TrSvcID: port}
}

func TestDoneWhenPeerStopsAnswering(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	trid := fakePeer(t, func(net.Conn) { <-release }) // alive but silent
	c, err := DialWith(context.Background(), trid, subNQN, host1,
		DialOptions{KeepAliveInterval: 5 * time.Millisecond, KeepAliveTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	require.Equal(t, uint16(7), c.Info().CntlID)
	waitDone(t, c)
	require.ErrorContains(t, c.Err(), "keep-alive")
}

func TestDoneWhenPeerDies(t *testing.T) {
	trid := fakePeer(t, func(c net.Conn) { _ = c.Close() })
	c, err := DialWith(context.Background(), trid, subNQN, host1, DialOptions{KeepAliveInterval: -1})
	require.NoError(t, err)
	defer c.Close()
	waitDone(t, c)
	require.ErrorIs(t, c.Err(), ErrDisconnected)
}

func TestDoneWhenPeerSendsGarbage(t *testing.T) {
	trid := fakePeer(t, func(c net.Conn) { _, _ = c.Write(make([]byte, 64)) })
	c, err := DialWith(context.Background(), trid, subNQN, host1, DialOptions{KeepAliveInterval: -1})
	require.NoError(t, err)
	defer c.Close()
	waitDone(t, c)
	require.ErrorIs(t, c.Err(), ErrProtocol)
}

func TestTargetSurvivesGarbage(t *testing.T) {
	_, trid := newTarget(t, blockdev.NewMemory(512, 64))
	raw, err := net.Dial("tcp", trid.key())
	require.NoError(t, err)
	_, _ = raw.Write([]byte("GET / HTTP/1.0\r\n\r\n0123456789abcdef0123456789"))
	_, err = raw.Read(make([]byte, 1))
	require.Error(t, err, "the target hangs up on garbage")
	_ = raw.Close()
	requireUp(t, dial(t, trid, host1))
}

func TestCloseIsIdempotentOnHost(t *testing.T) {
	_, trid := newTarget(t, blockdev.NewMemory(512, 64))
	c := dial(t, trid, host1)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	require.ErrorIs(t, c.Err(), ErrClosed)
	_, err := c.WriteAt(1, make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrClosed)
}

// TestNamespaceChangesReachHosts: a host connected before a namespace is
// removed or added learns it from an async event, as a real host rescans
// on Namespace Attribute Changed: the list in Info follows, I/O to a
// removed namespace fails, I/O to an added one works without reconnecting.
func TestNamespaceChangesReachHosts(t *testing.T) {
	tg, trid := newTarget(t, blockdev.NewMemory(512, 64))
	c := dial(t, trid, host1)
	waitEvent := func() {
		t.Helper()
		select {
		case <-c.Events():
		case <-c.Done():
			t.Fatal("connection lost")
		}
	}

	tg.SetNamespaces(subNQN, nil)
	waitEvent()
	require.Empty(t, c.Info().Namespaces)
	_, err := c.ReadAt(1, make([]byte, 512), 0)
	require.ErrorIs(t, err, ErrNoNamespace)

	dev := blockdev.NewMemory(4096, 32)
	ns := Namespace{NSID: 2, NGUID: "FFEEDDCCBBAA99887766554433221100", UUID: "ffeeddcc-bbaa-9988-7766-554433221100", Dev: dev}
	tg.SetNamespaces(subNQN, []Namespace{ns})
	waitEvent()
	require.Equal(t, []NamespaceInfo{{NSID: 2, NGUID: ns.NGUID, UUID: ns.UUID, BlockSize: 4096, NumBlocks: 32}}, c.Info().Namespaces)
	data := pattern(3, 4096)
	_, err = c.WriteAt(2, data, 4096)
	require.NoError(t, err)
	got := make([]byte, 4096)
	_, err = dev.ReadAt(got, 4096)
	require.NoError(t, err)
	require.Equal(t, data, got)
}
