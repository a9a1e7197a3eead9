package nvmetcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// The real-SPDK tests run one spdk_tgt inside a network namespace ("tgt",
// 10.99.0.1) and reach it from another ("ini") through Host.DialContext, so
// the listeners can use the standard port 4420 without touching the
// machine's network.
const (
	spdkSub    = "nqn.2016-06.io.spdk:nvmetcp-real"
	spdkHost   = "nqn.2016-06.io.spdk:nvmetcp-host"
	spdkSerial = "NVMETCP0000000000001"
	spdkModel  = "NVMETCP_REAL_SPDK"
	spdkUUID   = "3f8d2c1e-5b7a-4e9c-8d21-6a0b9c7e1f42"
	spdkIP     = "10.99.0.1"
)

// realSPDK is a spdk_tgt started for a test.
type realSPDK struct {
	rpc *spdk.Client
	ini *netnstest.Host // where the host dials from
	log string
}

// startSPDK starts spdk_tgt in a namespace with a 64 MiB malloc bdev
// exported as namespace 1 of spdkSub (ANA reporting on) and a 16 MiB one
// with protection information as namespace 2, listening on
// spdkIP:4420 and :4421, admitting spdkHost. It skips the test, saying how
// to enable it, when SPDK, root or ip are missing.
func startSPDK(t *testing.T) *realSPDK {
	dir := os.Getenv("VDA_SPDK_DIR")
	if dir == "" {
		t.Skip("real SPDK test: set VDA_SPDK_DIR to an SPDK tree with wrap/spdk_tgt (e.g. /work/shared/spdk/v24.01) and run as root with iproute2's ip")
	}
	bin := filepath.Join(dir, "wrap", "spdk_tgt")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("real SPDK test: VDA_SPDK_DIR=%s has no wrap/spdk_tgt: %v", dir, err)
	}
	if err := netnstest.Available(); err != nil {
		t.Skipf("real SPDK test: %v", err)
	}
	n := netnstest.New(t)
	tgt := n.AddHost("tgt", spdkIP+"/24")
	s := &realSPDK{ini: n.AddHost("ini", "10.99.0.2/24")}

	tmp := t.TempDir()
	sock := filepath.Join(tmp, "spdk.sock")
	s.log = filepath.Join(tmp, "spdk_tgt.log")
	logf, err := os.Create(s.log)
	require.NoError(t, err)
	defer logf.Close()
	cmd := tgt.Command(context.Background(), bin, "--no-huge", "-s", "1024", "--no-pci",
		"--disable-cpumask-locks", "-m", "0x1", "-r", sock, "--wait-for-rpc")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = os.RemoveAll(fmt.Sprintf("/var/run/dpdk/spdk_pid%d", cmd.Process.Pid))
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			t.Logf("spdk_tgt log:\n%s", tail(string(b), 60))
		}
	})
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			b, _ := os.ReadFile(s.log)
			t.Fatalf("spdk_tgt exited at start:\n%s", b)
		default:
		}
		_, err := os.Stat(sock)
		return err == nil
	}, 2*time.Minute, 20*time.Millisecond, "spdk_tgt RPC socket")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s.rpc, err = spdk.New(sock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.rpc.Close() })
	f := false
	require.NoError(t, s.rpc.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: &f}))
	require.NoError(t, s.rpc.FrameworkStartInit(ctx))
	// SPDK v24.01 sends a read in several C2HData PDUs only when it strips
	// protection information: namespace 2 (DIF type 1, 8 bytes of metadata
	// per block, which the host does not see) makes it do so.
	tr := true
	require.NoError(t, s.rpc.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportParams{TRType: "TCP", DIFInsertOrStrip: &tr}))
	_, err = s.rpc.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: "M0", BlockSize: 512, NumBlocks: 64 << 20 / 512})
	require.NoError(t, err)
	md, dif := uint32(8), uint32(1)
	_, err = s.rpc.BdevMallocCreate(ctx, spdk.BdevMallocCreateParams{Name: "M1", BlockSize: 512, NumBlocks: 16 << 20 / 512,
		MDSize: &md, MDInterleave: &tr, DIFType: &dif})
	require.NoError(t, err)
	require.NoError(t, s.rpc.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemParams{NQN: spdkSub,
		SerialNumber: spdkSerial, ModelNumber: spdkModel, AllowAnyHost: &f, ANAReporting: &tr}))
	_, err = s.rpc.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsParams{NQN: spdkSub,
		Namespace: spdk.Namespace{BdevName: "M0", UUID: spdkUUID}})
	require.NoError(t, err)
	_, err = s.rpc.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsParams{NQN: spdkSub,
		Namespace: spdk.Namespace{BdevName: "M1"}})
	require.NoError(t, err)
	for _, port := range []string{"4420", "4421"} {
		require.NoError(t, s.listen(ctx, port))
	}
	require.NoError(t, s.rpc.NvmfSubsystemAddHost(ctx, spdk.NvmfSubsystemHostParams{NQN: spdkSub, Host: spdkHost}))
	return s
}

func (s *realSPDK) addr(port string) spdk.ListenAddress {
	return spdk.ListenAddress{TRType: "TCP", AdrFam: "ipv4", TRAddr: spdkIP, TRSvcID: port}
}

func (s *realSPDK) listen(ctx context.Context, port string) error {
	return s.rpc.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerParams{NQN: spdkSub,
		ListenAddress: s.addr(port)})
}

func (s *realSPDK) unlisten(ctx context.Context, port string) error {
	return s.rpc.NvmfSubsystemRemoveListener(ctx, spdk.NvmfSubsystemRemoveListenerParams{NQN: spdkSub,
		ListenAddress: s.addr(port)})
}

func (s *realSPDK) setANA(ctx context.Context, port, state string) error {
	return s.rpc.NvmfSubsystemListenerSetANAState(ctx, spdk.NvmfSubsystemListenerSetANAStateParams{
		NQN: spdkSub, ListenAddress: s.addr(port), ANAState: state})
}

func (s *realSPDK) options() Options {
	return Options{HostNQN: spdkHost, Dial: s.ini.DialContext}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

func TestRealSPDK(t *testing.T) {
	s := startSPDK(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Run("identify", func(t *testing.T) { testSPDKIdentify(t, ctx, s) })
	t.Run("read write", func(t *testing.T) { testSPDKReadWrite(t, ctx, s) })
	t.Run("host not allowed", func(t *testing.T) { testSPDKRefusedHost(t, ctx, s) })
	t.Run("path statuses", func(t *testing.T) { testSPDKPathStatuses(t, ctx, s) })
	t.Run("multipath", func(t *testing.T) { testSPDKMultipath(t, ctx, s) })
}

func testSPDKIdentify(t *testing.T, ctx context.Context, s *realSPDK) {
	c, err := Connect(ctx, spdkIP+":4420", spdkSub, s.options())
	require.NoError(t, err)
	defer c.Close()
	info := c.Info()
	t.Logf("controller: %+v", info)
	require.Equal(t, spdkSerial, info.Serial)
	require.Equal(t, spdkModel, info.Model)
	require.NotZero(t, info.CntlID)
	require.True(t, info.ANAReporting)
	require.Equal(t, uint8(0x7), info.ANACap&0x7, "optimized, non-optimized and inaccessible are reported")
	require.NotZero(t, info.ANAGroups)
	require.NotZero(t, info.MaxTransferBytes)
	require.NotZero(t, info.InCapsuleBytes)
	nss := c.Namespaces()
	require.Len(t, nss, 2)
	require.Equal(t, uint32(1), nss[0].NSID)
	require.Equal(t, NamespaceInfo{NSID: 2, BlockSize: 512, Blocks: 16 << 20 / 512, ANAGroupID: 2, UUID: nss[1].UUID,
		NGUID: nss[1].NGUID}, nss[1], "the metadata is stripped: the host sees plain 512-byte blocks")
	require.Equal(t, uint32(512), nss[0].BlockSize)
	require.Equal(t, uint64(64<<20/512), nss[0].Blocks)
	require.Equal(t, spdkUUID, nss[0].UUID.String())
	require.Equal(t, ANAOptimized, c.ANAState(1))
}

func testSPDKReadWrite(t *testing.T, ctx context.Context, s *realSPDK) {
	c, err := Connect(ctx, spdkIP+":4420", spdkSub, s.options())
	require.NoError(t, err)
	defer c.Close()
	info := c.Info()
	// In-capsule writes, R2T writes of one and of several PDUs, requests
	// split at the largest transfer, reads of one and of many commands.
	type span struct{ off, n int }
	spans := []span{
		{0, 512},
		{4096, int(info.InCapsuleBytes)},
		{64 << 10, int(info.InCapsuleBytes) + 512},
		{1 << 20, int(info.MaxTransferBytes)},
		{2 << 20, 1 << 20},
		{4<<20 + 512, 3*int(info.MaxTransferBytes) + 1536},
		{63 << 20, 1 << 20}, // the end of the namespace
	}
	for i, sp := range spans {
		require.NoError(t, c.WriteAt(ctx, 1, pattern(sp.n, uint64(i+100)), int64(sp.off)), "write %d at %d", sp.n, sp.off)
	}
	// Concurrent writers on one queue.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.WriteAt(ctx, 1, pattern(128<<10, uint64(i+200)), int64(16<<20+i*(128<<10)))
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	// A full queue: 4 MiB are 32 commands in flight at once, twice over
	// from two goroutines.
	big := pattern(8<<20, 300)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.WriteAt(ctx, 1, big[i*(4<<20):(i+1)*(4<<20)], int64(32<<20+i*(4<<20)))
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	st := c.Stats()
	t.Logf("writer: %+v", st)
	require.GreaterOrEqual(t, st.InCapsuleWrites, uint64(1+2), "Connect and the writes of at most %d bytes", info.InCapsuleBytes)
	require.GreaterOrEqual(t, st.R2Ts, uint64(5+8))
	require.GreaterOrEqual(t, st.H2CDataPDUs, st.R2Ts)

	// Read back through a second controller, so nothing comes from the first.
	c2, err := Connect(ctx, spdkIP+":4421", spdkSub, s.options())
	require.NoError(t, err)
	defer c2.Close()
	require.NotEqual(t, c.Info().CntlID, c2.Info().CntlID)
	for i, sp := range spans {
		got := make([]byte, sp.n)
		require.NoError(t, c2.ReadAt(ctx, 1, got, int64(sp.off)))
		require.True(t, bytes.Equal(pattern(sp.n, uint64(i+100)), got), "read %d at %d", sp.n, sp.off)
	}
	got := make([]byte, 1<<20)
	require.NoError(t, c2.ReadAt(ctx, 1, got, 16<<20))
	st = c2.Stats()
	t.Logf("reader: %+v", st)
	reads := uint64(0)
	for _, sp := range append(spans, span{0, 1 << 20}) {
		reads += (uint64(sp.n) + uint64(info.MaxTransferBytes) - 1) / uint64(info.MaxTransferBytes)
	}
	require.Equal(t, 1+reads, st.Commands)
	require.Equal(t, reads, st.C2HDataPDUs, "one C2HData PDU per read, with SUCCESS")

	// Namespace 2: SPDK strips the protection information and sends each
	// read in several C2HData PDUs.
	want := pattern(1<<20, 7)
	require.NoError(t, c.WriteAt(ctx, 2, want, 512))
	got2 := make([]byte, 1<<20)
	require.NoError(t, c2.ReadAt(ctx, 2, got2, 512))
	require.True(t, bytes.Equal(want, got2), "namespace 2")
	st2 := c2.Stats()
	t.Logf("reader of namespace 2: %d commands, %d C2HData PDUs", st2.Commands-st.Commands, st2.C2HDataPDUs-st.C2HDataPDUs)
	require.Equal(t, st.Commands+8, st2.Commands)
	require.Greater(t, st2.C2HDataPDUs-st.C2HDataPDUs, uint64(8), "reads came in several C2HData PDUs each")
	for i := range 8 {
		require.True(t, bytes.Equal(pattern(128<<10, uint64(i+200)), got[i*(128<<10):(i+1)*(128<<10)]), "writer %d", i)
	}
	got = make([]byte, 8<<20)
	require.NoError(t, c2.ReadAt(ctx, 1, got, 32<<20))
	require.True(t, bytes.Equal(big, got), "8 MiB written by two full queues")
	err = c2.ReadAt(ctx, 1, make([]byte, 1024), 64<<20-512)
	require.ErrorIs(t, err, ErrInvalid, "beyond the end")
}

func testSPDKRefusedHost(t *testing.T, ctx context.Context, s *realSPDK) {
	o := s.options()
	o.HostNQN = "nqn.2016-06.io.spdk:nvmetcp-stranger"
	_, err := Connect(ctx, spdkIP+":4420", spdkSub, o)
	t.Logf("SPDK refused the host: %v", err)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, uint8(SCTCommandSpecific), se.SCT)
	require.Equal(t, uint8(SCConnectInvalidHost), se.SC)
	require.Contains(t, err.Error(), "host not allowed")

	_, err = Connect(ctx, spdkIP+":4420", spdkSub+"-nope", s.options())
	t.Logf("SPDK refused an unknown subsystem: %v", err)
	require.Error(t, err)
}

// testSPDKPathStatuses records what one controller sees when its listener
// goes inaccessible and when it is removed.
func testSPDKPathStatuses(t *testing.T, ctx context.Context, s *realSPDK) {
	c, err := Connect(ctx, spdkIP+":4421", spdkSub, s.options())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, s.setANA(ctx, "4421", spdk.ANAInaccessible))
	require.Eventually(t, func() bool { return c.ANAState(1) == ANAInaccessible }, time.Minute,
		10*time.Millisecond, "ANA change notice")
	err = c.WriteAt(ctx, 1, make([]byte, 512), 0)
	t.Logf("write through an inaccessible listener: %v", err)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	require.True(t, IsPathError(err))
	require.Equal(t, uint8(SCANAInaccessible), se.SC)
	err = c.ReadAt(ctx, 1, make([]byte, 512), 0)
	t.Logf("read through an inaccessible listener: %v", err)
	require.True(t, IsPathError(err))
	require.NoError(t, s.setANA(ctx, "4421", spdk.ANAOptimized))
	require.Eventually(t, func() bool { return c.ANAState(1) == ANAOptimized }, time.Minute, 10*time.Millisecond)
	require.NoError(t, c.WriteAt(ctx, 1, make([]byte, 512), 0))

	require.NoError(t, s.unlisten(ctx, "4421"))
	err = c.WriteAt(ctx, 1, make([]byte, 512), 0)
	t.Logf("write after the listener was removed: %v (controller: %v, ANA %v)", err, c.Err(), c.ANAState(1))
	select {
	case <-c.Done():
		t.Logf("controller failed: %v", c.Err())
	case <-time.After(5 * time.Second):
		t.Logf("controller still up 5 s after its listener was removed")
	}
	_, err = Connect(ctx, spdkIP+":4421", spdkSub, s.options())
	t.Logf("connect to the removed listener: %v", err)
	require.ErrorIs(t, err, ErrTransport)
	require.NoError(t, s.listen(ctx, "4421"))
}

func testSPDKMultipath(t *testing.T, ctx context.Context, s *realSPDK) {
	require.NoError(t, s.setANA(ctx, "4421", spdk.ANANonOptimized))
	m, err := NewMultipath([]string{spdkIP + ":4420", spdkIP + ":4421"}, spdkSub, MultipathOptions{
		Options: s.options(), RetryInterval: 20 * time.Millisecond, ReconnectDelay: 50 * time.Millisecond,
		MaxReconnectDelay: 500 * time.Millisecond})
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Connect(ctx))
	ps := m.Paths()
	require.Equal(t, ANAOptimized, ps[0].ANAState)
	require.Equal(t, ANANonOptimized, ps[1].ANAState)
	ni, err := m.Namespace(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, spdkUUID, ni.UUID.String())

	acked := make(chan uint64, 1)
	stop := make(chan struct{})
	var res fabric.SeqResult
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, runErr = fabric.RunSeq(ctx, m, fabric.SeqWorkload{NSID: 1, BlockSize: 512, Blocks: 4096, Stop: stop,
			OnAck: func(n uint64) {
				select {
				case acked <- n:
				default:
				}
			}})
	}()
	progress := func(n uint64, what string) {
		t.Helper()
		if err := waitAcks(acked, done, time.After(2*time.Minute), n); err != nil {
			t.Fatalf("%s: %v (in 2 minutes): %v; paths %+v", what, err, runErr, m.Paths())
		}
	}
	ios := func(i int) uint64 { return m.Paths()[i].IOs }

	progress(300, "start")
	require.Zero(t, ios(1), "all I/O on the optimized path")

	require.NoError(t, s.setANA(ctx, "4420", spdk.ANAInaccessible))
	require.NoError(t, s.setANA(ctx, "4421", spdk.ANAOptimized))
	before := ios(1)
	progress(300, "4420 inaccessible")
	require.Greater(t, ios(1), before, "I/O moved to 4421")
	t.Logf("after 4420 went inaccessible: %+v %+v", m.Stats(), m.Paths())

	require.NoError(t, s.setANA(ctx, "4420", spdk.ANAOptimized))
	require.NoError(t, s.setANA(ctx, "4421", spdk.ANANonOptimized))
	require.Eventually(t, func() bool { return m.Paths()[0].ANAState == ANAOptimized }, time.Minute, 10*time.Millisecond)
	progress(100, "4420 optimized again")
	before = ios(0)
	progress(300, "4420 optimized again")
	require.Greater(t, ios(0), before, "I/O back on 4420")

	require.NoError(t, s.unlisten(ctx, "4420"))
	before = ios(1)
	progress(300, "4420 removed")
	require.Greater(t, ios(1), before, "I/O moved to 4421 after 4420 was removed")
	t.Logf("after 4420 was removed: %+v %+v", m.Stats(), m.Paths())

	require.NoError(t, s.listen(ctx, "4420"))
	require.Eventually(t, func() bool { return m.Paths()[0].Connected }, time.Minute, 10*time.Millisecond,
		"4420 reconnected in the background")
	progress(100, "4420 back")
	before = ios(0)
	progress(300, "4420 back")
	require.Greater(t, ios(0), before, "I/O back on the re-added 4420")

	close(stop)
	<-done
	require.NoError(t, runErr)
	t.Logf("workload: %d writes acknowledged, longest gap %v; %+v", res.Acked, res.MaxGap, m.Stats())
	require.NoError(t, fabric.VerifySeq(ctx, m, res))
	require.NotZero(t, m.Stats().Retries)
}
