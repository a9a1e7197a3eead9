package realtier

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/internal/realbench"
	"github.com/vda-io/vda/internal/rpcmeter"
	"github.com/vda-io/vda/internal/spdkproc"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/nvmeof/nvmetcp"
	"github.com/vda-io/vda/spdk"
)

// The resize and QoS test runs on two spdk_tgt (a third would not fit the
// machine): "dn" holds the disk node and the array's secondary controller
// (two agents driving one spdk_tgt), "cn" the primary controller. A host in
// its own network namespace connects through both. A primary cannot move
// to "dn" (it would attach its own VDs, whose namespaces carry the UUIDs
// of lvols of that same spdk_tgt), so the primary's move is a kill -9 of
// "cn" and a new epoch on a fresh spdk_tgt there: the same re-assembly,
// examine and re-export a failover does.
const (
	rsNVMePort  = "4420"
	rsHostNQN   = "nqn.2016-06.io.example:resize-host"
	rsDASize    = 8 << 20
	rsPhysical  = 24 << 20
	rsStripes   = 2
	rsStripKB   = 64
	rsQoSIOPS   = 1000 // SPDK's smallest IOPS limit
	rsQoSWMBps  = 20
	rsIOPSProbe = 2 * time.Second
)

var rsIPs = map[string]string{"dn": "10.21.0.1", "cn": "10.21.0.2", "host": "10.21.0.3"}

// rsAgent is one in-process agent driving an spdk_tgt.
type rsAgent struct {
	a      *agent.Agent
	c      *spdk.Client
	meter  *rpcmeter.Proxy
	nodeID string
	gen    int64
}

func newRSAgent(t *testing.T, tg *spdkproc.Target, role agent.Role, ip string) *rsAgent {
	t.Helper()
	// The agent's requests go through a meter: the test counts them.
	m, err := rpcmeter.Start(tg.Socket()+"."+nvmeof.NewID()[:8], tg.Socket(), false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	c, err := spdk.New(m.Addr(), spdk.WithCallTimeout(5*time.Minute))
	require.NoError(t, err)
	lis, err := nvmeof.NewTransportID("tcp", "ipv4", ip, rsNVMePort)
	require.NoError(t, err)
	cfg := agent.DefaultConfig(role)
	cfg.SPDK, cfg.Listener, cfg.Insecure = c, lis, true
	cfg.SyncTimeout = 5 * time.Minute
	a, err := agent.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close(); _ = c.Close() })
	return &rsAgent{a: a, c: c, meter: m, nodeID: nvmeof.NewID()}
}

// sync applies a state and returns the objects' statuses.
func (r *rsAgent) sync(ctx context.Context, req *agentpb.SyncRequest) ([]*agentpb.ObjectStatus, error) {
	r.gen++
	req.Generation, req.StoreRevision, req.AgentId, req.NodeId = r.gen, r.gen, r.a.AgentID(), r.nodeID
	rep, err := r.a.Sync(ctx, req)
	return rep.GetObjects(), err
}

// syncOK applies a state and fails unless every object is OK.
func (r *rsAgent) syncOK(t *testing.T, ctx context.Context, req *agentpb.SyncRequest) []*agentpb.ObjectStatus {
	t.Helper()
	objs, err := r.sync(ctx, req)
	require.NoError(t, err)
	for _, o := range objs {
		require.True(t, o.GetOk(), "%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
	}
	return objs
}

// syncEventually applies a state until every object is OK (a path that
// SPDK is reconnecting reports not ready until it is back).
func (r *rsAgent) syncEventually(t *testing.T, ctx context.Context, req func() *agentpb.SyncRequest) {
	t.Helper()
	var last error
	require.Eventually(t, func() bool {
		objs, err := r.sync(ctx, req())
		for _, o := range objs {
			if err == nil && !o.GetOk() {
				err = fmt.Errorf("%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
			}
		}
		last = err
		return err == nil
	}, 2*time.Minute, 100*time.Millisecond, "last: %v", &last)
}

// rsArray is the desired state of one two-controller array, as the
// monitor would plan it.
type rsArray struct {
	da         vda.DiskArray
	pdID       string
	vds        []string
	cntlrs     [2]string // primary (on "cn"), secondary (on "dn")
	expID      string
	ports      [2]string
	nqn        nvmeof.NQN
	epoch      int64
	init       bool
	qos        *agentpb.QosSpec
	dnListener *agentpb.Transport
	cnListener *agentpb.Transport
}

func newRSArray(t *testing.T) *rsArray {
	l, err := vda.Layout(rsDASize, rsPhysical, rsStripes, rsStripKB)
	require.NoError(t, err)
	nqn, err := nvmeof.ExpNQN("da0", "exp0")
	require.NoError(t, err)
	a := &rsArray{pdID: nvmeof.NewID(), expID: nvmeof.NewID(), nqn: nqn, epoch: 1,
		cntlrs: [2]string{nvmeof.NewID(), nvmeof.NewID()}, ports: [2]string{nvmeof.NewID(), nvmeof.NewID()},
		da: vda.DiskArray{ID: nvmeof.NewID(), SizeBytes: rsDASize, PhysicalSizeBytes: rsPhysical, StripeCount: rsStripes,
			StripeSizeKB: rsStripKB, ClusterBytes: l.ClusterBytes, VDSizeBytes: l.VDSizeBytes}}
	for range rsStripes {
		a.vds = append(a.vds, nvmeof.NewID())
	}
	tr := func(ip string) *agentpb.Transport {
		return &agentpb.Transport{Trtype: "tcp", Adrfam: "ipv4", Traddr: ip, Trsvcid: rsNVMePort}
	}
	a.dnListener, a.cnListener = tr(rsIPs["dn"]), tr(rsIPs["cn"])
	return a
}

func (a *rsArray) dnState() *agentpb.SyncRequest {
	pd := &agentpb.PdSpec{Id: a.pdID, Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{
		SizeBytes: uint64(len(a.vds))*a.da.VDSizeBytes + 16<<20}}}
	for _, vd := range a.vds {
		pd.Vds = append(pd.Vds, &agentpb.VdSpec{Id: vd, DaId: a.da.ID, Epoch: a.epoch, SizeBytes: a.da.VDSizeBytes,
			HostNqn: string(nvmeof.PrimaryHostNQN(a.cntlrs[0], uint64(a.epoch)))})
	}
	return &agentpb.SyncRequest{State: &agentpb.SyncRequest_Dn{Dn: &agentpb.DnState{Pds: []*agentpb.PdSpec{pd}}}}
}

func (a *rsArray) cnState(i int) *agentpb.SyncRequest {
	c := &agentpb.CntlrSpec{CntlrId: a.cntlrs[i], CntlrIdx: uint32(i), Primary: i == 0, Epoch: a.epoch,
		Da: &agentpb.DaSpec{Id: a.da.ID, SizeBytes: a.da.SizeBytes, ClusterBytes: a.da.ClusterBytes,
			StripeSizeKb: uint32(a.da.StripeSizeKB), Initialized: a.init, Qos: a.qos}}
	exp := &agentpb.ExpSpec{Id: a.expID, PortId: a.ports[i], Nqn: string(a.nqn), InitiatorNqn: rsHostNQN}
	c.Exps = []*agentpb.ExpSpec{exp}
	if i == 0 {
		for j, vd := range a.vds {
			c.Vds = append(c.Vds, &agentpb.VdRef{Id: vd, Idx: uint32(j), DnListener: a.dnListener})
		}
		exp.SecondaryHostNqns = []string{string(nvmeof.HostNQN(a.cntlrs[1]))}
	} else {
		c.PrimaryCntlrId, c.PrimaryListener = a.cntlrs[0], a.cnListener
	}
	return &agentpb.SyncRequest{State: &agentpb.SyncRequest_Cn{Cn: &agentpb.CnState{Cntlrs: []*agentpb.CntlrSpec{c}}}}
}

// rsEnv is the two spdk_tgt and their three agents.
type rsEnv struct {
	t                  *testing.T
	net                *netnstest.Network
	dir                string
	dnTgt, cnTgt       *spdkproc.Target
	dn, secondary, pri *rsAgent
}

func newRSEnv(t *testing.T) *rsEnv {
	spdkproc.Require(t)
	if err := netnstest.Available(); err != nil {
		if spdkproc.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "vdars") // unix socket paths are short
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	e := &rsEnv{t: t, net: netnstest.New(t), dir: dir}
	for _, h := range []string{"dn", "cn", "host"} {
		e.net.AddHost(h, rsIPs[h]+"/24")
	}
	e.dnTgt = e.start("dn", "0x1")
	e.dn = newRSAgent(t, e.dnTgt, agent.RoleDN, rsIPs["dn"])
	e.secondary = newRSAgent(t, e.dnTgt, agent.RoleCN, rsIPs["dn"])
	e.cnTgt = e.start("cn", "0x2")
	e.pri = newRSAgent(t, e.cnTgt, agent.RoleCN, rsIPs["cn"])
	return e
}

func (e *rsEnv) start(host, mask string) *spdkproc.Target {
	return spdkproc.StartT(e.t, spdkproc.Config{Name: "spdk_tgt-" + host, Socket: filepath.Join(e.dir, host+".sock"),
		CPUMask: mask, Command: e.net.Host(host).Command})
}

// connect connects the host to the exporter through one node's listener.
func (e *rsEnv) connect(ctx context.Context, nqn nvmeof.NQN, node string) (*nvmetcp.Controller, error) {
	return nvmetcp.Connect(ctx, rsIPs[node]+":"+rsNVMePort, string(nqn),
		nvmetcp.Options{HostNQN: rsHostNQN, Dial: e.net.Host("host").DialContext, CommandTimeout: hostCommandTimeout})
}

// lvol is the DA lvol as the primary's SPDK lists it.
func (e *rsEnv) lvol(ctx context.Context, a *rsArray) (spdk.Bdev, error) {
	alias := nvmeof.LvolAlias(nvmeof.DALvstoreName(a.da.ID), nvmeof.DALvolName(a.da.ID))
	bs, err := e.pri.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: alias})
	if err == nil && len(bs) != 1 {
		err = fmt.Errorf("%s listed %d times", alias, len(bs))
	}
	if err != nil {
		return spdk.Bdev{}, err
	}
	return bs[0], nil
}

// build brings the array up and exports it on both controllers.
func (e *rsEnv) build(ctx context.Context, a *rsArray) {
	t := e.t
	t.Helper()
	e.dn.syncOK(t, ctx, a.dnState())
	objs, err := e.pri.sync(ctx, a.cnState(0))
	require.NoError(t, err)
	for _, o := range objs {
		if o.GetKind() == agentpb.Kind_KIND_CNTLR {
			require.True(t, o.GetOk() && o.GetDaInitialized(), "%s", o.GetError())
		}
	}
	a.init = true
	e.pri.syncOK(t, ctx, a.cnState(0))
	e.secondary.syncOK(t, ctx, a.cnState(1))
}

// waitSize waits until ctrl's namespace 1 reports size bytes (the host
// learns it from SPDK's Namespace Attribute Changed notice).
func waitSize(ctx context.Context, ctrl *nvmetcp.Controller, size uint64) error {
	for {
		ni, err := ctrl.Namespace(ctx, 1)
		if err == nil && ni.SizeBytes() == size {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace 1 has %d bytes, want %d: %w (%v)", ni.SizeBytes(), size, ctx.Err(), err)
		case <-time.After(time.Millisecond):
		}
	}
}

// iops reads 4 KiB blocks at queue depth 16 for d and returns the rate.
func iops(ctx context.Context, ctrl *nvmetcp.Controller, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 16)
	start := time.Now()
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for i := int64(w); ; i += 16 {
				err := ctrl.ReadAt(ctx, 1, buf, (i%1024)*4096)
				if err != nil {
					if ctx.Err() == nil {
						errs[w] = err
					}
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), errors.Join(errs...)
}

// TestRealResizeAndQoS: on real spdk_tgt v24.01, growing the DA volume
// reaches a host connected through the primary and one connected through
// the secondary (whose bdev_nvme re-reads the namespace and resizes the
// bdev it re-exports) without reconnecting; QoS limits show in
// bdev_get_bdevs and bite (IOPS measured through the primary); a resync
// sets nothing; after the primary's spdk_tgt is killed and the array
// re-assembled at a new epoch, the lvol is found grown (no resize), the
// data past the old end is there, and the limits are set again.
func TestRealResizeAndQoS(t *testing.T) {
	e := newRSEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	a := newRSArray(t)
	e.build(ctx, a)

	viaPrimary, err := e.connect(ctx, a.nqn, "cn")
	require.NoError(t, err)
	defer viaPrimary.Close()
	viaSecondary, err := e.connect(ctx, a.nqn, "dn")
	require.NoError(t, err)
	defer viaSecondary.Close()
	for _, c := range []*nvmetcp.Controller{viaPrimary, viaSecondary} {
		require.NoError(t, waitSize(ctx, c, rsDASize))
	}

	// Resize to everything the lvstore holds.
	size := a.da.MaxSizeBytes()
	require.GreaterOrEqual(t, size, uint64(rsPhysical))
	a.da.SizeBytes = size
	start := time.Now()
	e.pri.meter.Reset()
	e.pri.syncOK(t, ctx, a.cnState(0))
	synced := time.Since(start)
	require.Equal(t, 1, e.pri.meter.Counts()["bdev_lvol_resize"])
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	require.NoError(t, waitSize(wctx, viaPrimary, size), "host through the primary")
	primarySeen := time.Since(start)
	require.NoError(t, waitSize(wctx, viaSecondary, size), "host through the secondary")
	t.Logf("real SPDK resize %d -> %d bytes: primary sync %v, host via primary sees it at %v, via secondary at %v",
		rsDASize, size, synced, primarySeen, time.Since(start))
	lv, err := e.lvol(ctx, a)
	require.NoError(t, err)
	require.Equal(t, size, lv.SizeBytes())
	expBdev, err := e.secondary.c.BdevGetBdevs(ctx, spdk.BdevGetBdevsParams{Name: nvmeof.ExpBdevName(a.expID)})
	require.NoError(t, err)
	require.Equal(t, size, expBdev[0].SizeBytes(), "the secondary's attached bdev")

	tail := make([]byte, 64<<10)
	for i := range tail {
		tail[i] = byte(i*7 + 3)
	}
	off := int64(size) - int64(len(tail))
	require.NoError(t, viaSecondary.WriteAt(ctx, 1, tail, off), "write past the old end through the secondary")
	got := make([]byte, len(tail))
	require.NoError(t, viaPrimary.ReadAt(ctx, 1, got, off))
	require.Equal(t, tail, got)

	// QoS: the IOPS before and with a limit of 1000.
	before, err := iops(ctx, viaPrimary, rsIOPSProbe)
	require.NoError(t, err)
	a.qos = &agentpb.QosSpec{RwIosPerSec: rsQoSIOPS, WMbytesPerSec: rsQoSWMBps}
	want := spdk.RateLimits{RWIOsPerSec: rsQoSIOPS, WMBytesPerSec: rsQoSWMBps}
	e.pri.syncOK(t, ctx, a.cnState(0))
	lv, err = e.lvol(ctx, a)
	require.NoError(t, err)
	require.Equal(t, want, lv.AssignedRateLimits)
	limited, err := iops(ctx, viaPrimary, rsIOPSProbe)
	require.NoError(t, err)
	t.Logf("real SPDK QoS: %.0f IOPS without a limit, %.0f with rw_ios_per_sec %d", before, limited, rsQoSIOPS)
	require.Less(t, limited, 1.3*rsQoSIOPS, "the limit bites")

	// A resync changes nothing: only reads reach either controller's SPDK
	// (no bdev_lvol_resize, no bdev_set_qos_limit).
	for _, r := range []*rsAgent{e.pri, e.secondary} {
		r.meter.Reset()
	}
	e.pri.syncOK(t, ctx, a.cnState(0))
	e.secondary.syncOK(t, ctx, a.cnState(1))
	for name, r := range map[string]*rsAgent{"primary": e.pri, "secondary": e.secondary} {
		require.NoError(t, realbench.CheckReadOnly(r.meter.Counts()), name)
	}

	// The primary's spdk_tgt dies; a new epoch re-assembles the array on a
	// fresh one.
	_ = viaPrimary.Close()
	_ = e.cnTgt.Kill() // kill -9: its error is the signal
	e.cnTgt = e.start("cn", "0x2")
	e.pri = newRSAgent(t, e.cnTgt, agent.RoleCN, rsIPs["cn"])
	a.epoch++
	e.dn.syncOK(t, ctx, a.dnState())
	e.pri.syncEventually(t, ctx, func() *agentpb.SyncRequest { return a.cnState(0) })
	e.secondary.syncEventually(t, ctx, func() *agentpb.SyncRequest { return a.cnState(1) })
	lv, err = e.lvol(ctx, a)
	require.NoError(t, err)
	require.Equal(t, size, lv.SizeBytes(), "the lvstore holds the grown lvol")
	require.Zero(t, e.pri.meter.Counts()["bdev_lvol_resize"])
	require.Equal(t, 1, e.pri.meter.Counts()["bdev_set_qos_limit"])
	require.Equal(t, want, lv.AssignedRateLimits, "the limits are set again")
	for _, node := range []string{"cn", "dn"} {
		c, err := e.connect(ctx, a.nqn, node)
		require.NoError(t, err, node)
		ni, err := c.Namespace(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, size, ni.SizeBytes(), node)
		clear(got)
		require.NoError(t, c.ReadAt(ctx, 1, got, off), node)
		require.Equal(t, tail, got, node)
		_ = c.Close()
	}
	require.NoError(t, e.dnTgt.Crashed())
	require.NoError(t, e.cnTgt.Crashed())
}
