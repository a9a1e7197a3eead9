package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
	"github.com/vda-io/vda/spdk/spdktest/fabric"
)

// cnNodeEnv is one node of a test cluster: a fake spdk_tgt started as the
// tutorial does (--wait-for-rpc, bdev_set_options -d, framework_start_init),
// a client, a listener on a port reserved for the fake, and the node's
// reconciler.
type cnNodeEnv struct {
	t        testing.TB
	fake     *spdktest.Server
	c        *spdk.Client
	listener nvmeof.TransportID
	cn       *cnNode
	dn       *dnNode
	rec      *cnRecorder // nil unless recorded
	// allowedLvolDeletes: see newCNEnv.
	allowedLvolDeletes int
}

func newCNNodeEnv(t testing.TB, opts ...spdktest.Option) *cnNodeEnv {
	t.Helper()
	fake := spdktest.NewServer(t, append([]spdktest.Option{spdktest.WithWaitForRPC()}, opts...)...)
	c, err := spdk.Dial(context.Background(), fake.SockPath())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	e := &cnNodeEnv{t: t, fake: fake, c: c, listener: testListener(t, fake)}
	e.initFramework()
	return e
}

// newCNEnv is a controller node. Whatever the test does, a CN must never
// have asked SPDK to delete an lvol or an lvstore (invariant 2), but for
// the snapshot and clone lvols a test deleted on purpose
// (allowedLvolDeletes, counted since the last ResetCounts; the test checks
// which ones went).
func newCNEnv(t testing.TB, opts ...spdktest.Option) *cnNodeEnv {
	t.Helper()
	e := newCNNodeEnv(t, opts...)
	e.cn = newCNNode(e.c, e.listener, nil)
	t.Cleanup(func() {
		if n := e.fake.RPCCount("bdev_lvol_delete"); n != e.allowedLvolDeletes {
			t.Errorf("invariant 2: a controller node sent bdev_lvol_delete %d times (%d expected)", n, e.allowedLvolDeletes)
		}
		for _, m := range []string{"bdev_lvol_delete_lvstore"} {
			if n := e.fake.RPCCount(m); n != 0 {
				t.Errorf("invariant 2: a controller node sent %s %d times", m, n)
			}
		}
	})
	return e
}

// newRecordedCNEnv is a controller node whose requests are recorded in
// order by a proxy between the client and the fake.
func newRecordedCNEnv(t testing.TB) *cnNodeEnv {
	t.Helper()
	e := newCNEnv(t)
	e.record()
	return e
}

// record puts a recording proxy between the controller node's reconciler
// (a new one) and its fake.
func (e *cnNodeEnv) record() {
	e.t.Helper()
	e.rec = newCNRecorder(e.t, e.fake.SockPath())
	c, err := spdk.Dial(context.Background(), e.rec.path)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = c.Close() })
	e.c = c
	e.cn = newCNNode(c, e.listener, nil)
}

// newDNEnvForCN is a disk node driven by the DN reconciler.
func newDNEnvForCN(t testing.TB) *cnNodeEnv {
	t.Helper()
	e := newCNNodeEnv(t)
	e.dn = newDNNode(e.c, e.listener, nil)
	return e
}

func (e *cnNodeEnv) initFramework() {
	e.t.Helper()
	ctx := context.Background()
	require.NoError(e.t, e.c.BdevSetOptions(ctx, spdk.BdevSetOptionsParams{BdevAutoExamine: new(false)}))
	require.NoError(e.t, e.c.FrameworkStartInit(ctx))
}

// restart is kill -9 of spdk_tgt and a fresh start on the same socket.
func (e *cnNodeEnv) restart() {
	e.t.Helper()
	require.NoError(e.t, e.fake.Restart(true))
	e.initFramework()
}

func (e *cnNodeEnv) syncCN(st *agentpb.CnState) []*agentpb.ObjectStatus {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.cn.sync(ctx, st)
}

// syncCNOK syncs st and requires every object to be OK.
func (e *cnNodeEnv) syncCNOK(st *agentpb.CnState) []*agentpb.ObjectStatus {
	e.t.Helper()
	out := e.syncCN(st)
	for _, o := range out {
		require.True(e.t, o.GetOk(), "%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
	}
	return out
}

func (e *cnNodeEnv) syncDNOK(st *agentpb.DnState) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, o := range e.dn.sync(ctx, st) {
		require.True(e.t, o.GetOk(), "%s %s: %s", o.GetKind(), o.GetId(), o.GetError())
	}
}

// mutations returns the state-changing methods received since ResetCounts.
func (e *cnNodeEnv) mutations() []string {
	var out []string
	for _, m := range e.fake.CalledMethods() {
		if !spdk.IsReadOnly(m) {
			out = append(out, m)
		}
	}
	return out
}

func (e *cnNodeEnv) tcpTrid() fabric.TransportID {
	return fabric.TransportID{TrType: "tcp", AdrFam: "ipv4", TrAddr: e.listener.TrAddr, TrSvcID: e.listener.TrSvcID}
}

func cnTransport(tid nvmeof.TransportID) *agentpb.Transport {
	return &agentpb.Transport{Trtype: tid.TrType, Adrfam: tid.AdrFam, Traddr: tid.TrAddr, Trsvcid: tid.TrSvcID}
}

// cnOwned lists the CN objects SPDK holds, as "kind name" strings, sorted:
// what a test compares with what it expects (no orphans, nothing missing).
func (e *cnNodeEnv) cnOwned() []string {
	e.t.Helper()
	s, err := listCN(context.Background(), e.c)
	require.NoError(e.t, err)
	var out []string
	for name := range s.ctrlrs {
		if n, ok := nvmeof.ParseName(name); ok && isCNKind(n.Kind) {
			out = append(out, "ctrl "+name)
		}
	}
	for name := range s.raids {
		out = append(out, "raid "+name)
	}
	for _, l := range s.lvstores {
		out = append(out, "lvs "+l.Name)
	}
	for nqn := range s.subsystems {
		if n, ok := nvmeof.ParseName(string(nqn)); ok && isCNKind(n.Kind) {
			out = append(out, "sub "+string(nqn))
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func (e *cnNodeEnv) subsystem(nqn nvmeof.NQN) *spdk.Subsystem {
	e.t.Helper()
	subs, err := e.c.NvmfGetSubsystems(context.Background(), spdk.NvmfGetSubsystemsParams{NQN: string(nqn)})
	if err != nil {
		require.ErrorIs(e.t, err, spdk.ErrNotFound)
		return nil
	}
	require.Len(e.t, subs, 1)
	return &subs[0]
}

func (e *cnNodeEnv) lvstore(name string) *spdk.Lvstore {
	e.t.Helper()
	l, err := e.c.BdevLvolGetLvstores(context.Background(), spdk.LvstoreSelector{LvsName: name})
	if err != nil {
		require.ErrorIs(e.t, err, spdk.ErrNotFound)
		return nil
	}
	return &l[0]
}

func (e *cnNodeEnv) anaState(nqn nvmeof.NQN) string {
	e.t.Helper()
	ls, err := e.c.NvmfSubsystemGetListeners(context.Background(), spdk.NQNParams{NQN: string(nqn)})
	require.NoError(e.t, err)
	require.Len(e.t, ls, 1)
	return ls[0].State(1)
}

// cnCluster is one disk array over real fakes: VDs spread over disk nodes
// and controllers on controller nodes (controller i on CN i, index i).
type cnCluster struct {
	t           testing.TB
	dns         []*cnNodeEnv
	cns         []*cnNodeEnv
	daID        string
	vds         []string // raid order; VD i lives on DN i % len(dns)
	pds         []string // one PD per DN
	cntlrs      []string
	expID       string
	ports       []string // the exporter's port on each controller
	nqn         nvmeof.NQN
	initiator   nvmeof.NQN
	epoch       int64
	primary     int
	initialized bool
	down        map[int]bool // controllers whose CN is down: not synced (they stay secondaries of the DA)
}

const (
	cnTestVDBytes   = 32 << 20 // each VD
	cnTestPDBytes   = 40 << 20 // each PD (one VD each, plus lvstore metadata)
	cnTestDABytes   = 24 << 20 // the DA lvol (thin)
	cnTestCluster   = 1 << 20
	cnTestStripKB   = 64
	cnTestInitiator = "nqn.2016-06.io.example:host-h1"
)

func newCNCluster(t testing.TB, nDN, nVD, nCN int) *cnCluster {
	t.Helper()
	cl := &cnCluster{t: t, daID: nvmeof.NewID(), expID: nvmeof.NewID(), initiator: cnTestInitiator,
		epoch: 1, down: map[int]bool{}}
	for range nDN {
		cl.dns = append(cl.dns, newDNEnvForCN(t))
		cl.pds = append(cl.pds, nvmeof.NewID())
	}
	for range nVD {
		cl.vds = append(cl.vds, nvmeof.NewID())
	}
	for range nCN {
		cl.cns = append(cl.cns, newCNEnv(t))
		cl.cntlrs = append(cl.cntlrs, nvmeof.NewID())
		cl.ports = append(cl.ports, nvmeof.NewID())
	}
	nqn, err := nvmeof.ExpNQN("da0", "exp0")
	require.NoError(t, err)
	cl.nqn = nqn
	return cl
}

// dnState is DN d's desired state: its VDs admit the current primary.
func (cl *cnCluster) dnState(d int) *agentpb.DnState {
	pd := &agentpb.PdSpec{Id: cl.pds[d], Conf: &agentpb.PdSpec_Malloc{Malloc: &agentpb.MallocConf{SizeBytes: cnTestPDBytes}}}
	for i, vd := range cl.vds {
		if i%len(cl.dns) == d {
			pd.Vds = append(pd.Vds, &agentpb.VdSpec{Id: vd, DaId: cl.daID, Epoch: cl.epoch, SizeBytes: cnTestVDBytes,
				HostNqn: string(nvmeof.PrimaryHostNQN(cl.cntlrs[cl.primary], uint64(cl.epoch)))})
		}
	}
	pd.Conf.(*agentpb.PdSpec_Malloc).Malloc.SizeBytes = uint64(cnTestPDBytes) * uint64(max(1, len(pd.Vds)))
	return &agentpb.DnState{Pds: []*agentpb.PdSpec{pd}}
}

func (cl *cnCluster) syncDNs() {
	cl.t.Helper()
	for d, dn := range cl.dns {
		dn.syncDNOK(cl.dnState(d))
	}
}

// cntlrSpec is controller i's desired state.
func (cl *cnCluster) cntlrSpec(i int) *agentpb.CntlrSpec {
	p := cl.primary
	c := &agentpb.CntlrSpec{CntlrId: cl.cntlrs[i], CntlrIdx: uint32(i), Primary: i == p, Epoch: cl.epoch,
		Da: &agentpb.DaSpec{Id: cl.daID, SizeBytes: cnTestDABytes, ClusterBytes: cnTestCluster,
			StripeSizeKb: cnTestStripKB, Initialized: cl.initialized}}
	exp := &agentpb.ExpSpec{Id: cl.expID, PortId: cl.ports[i], Nqn: string(cl.nqn), InitiatorNqn: string(cl.initiator)}
	c.Exps = []*agentpb.ExpSpec{exp}
	if i != p {
		c.PrimaryCntlrId = cl.cntlrs[p]
		c.PrimaryListener = cnTransport(cl.cns[p].listener)
		return c
	}
	for j, vd := range cl.vds {
		c.Vds = append(c.Vds, &agentpb.VdRef{Id: vd, Idx: uint32(j), DnListener: cnTransport(cl.dns[j%len(cl.dns)].listener)})
	}
	for j, id := range cl.cntlrs {
		if j != p {
			exp.SecondaryHostNqns = append(exp.SecondaryHostNqns, string(nvmeof.HostNQN(id)))
		}
	}
	return c
}

func (cl *cnCluster) cnState(i int) *agentpb.CnState {
	return &agentpb.CnState{Cntlrs: []*agentpb.CntlrSpec{cl.cntlrSpec(i)}}
}

// syncCNs syncs every live controller: the primary first, then the others.
func (cl *cnCluster) syncCNs() {
	cl.t.Helper()
	cl.cns[cl.primary].syncCNOK(cl.cnState(cl.primary))
	for i, cn := range cl.cns {
		if i != cl.primary && !cl.down[i] {
			cn.syncCNOK(cl.cnState(i))
		}
	}
}

// build brings the array up from nothing: DNs, then the primary creates
// the lvstore, the "monitor" records the initialization, then everyone
// syncs with initialized set.
func (cl *cnCluster) build() {
	cl.t.Helper()
	cl.syncDNs()
	out := cl.cns[cl.primary].syncCN(cl.cnState(cl.primary))
	st := cnStatus(cl.t, out, agentpb.Kind_KIND_CNTLR, cl.cntlrs[cl.primary])
	require.True(cl.t, st.GetOk(), st.GetError())
	require.True(cl.t, st.GetDaInitialized())
	cl.initialized = true
	cl.syncCNs()
}

// failover makes controller to the primary at the next epoch, as the
// monitor does: commit, fence at the DNs, then the new primary, then the
// others.
func (cl *cnCluster) failover(to int) {
	cl.t.Helper()
	cl.primary = to
	cl.epoch++
	cl.syncDNs()
	cl.syncCNs()
}

// host connects the initiator to the exporter through controller i's CN.
func (cl *cnCluster) host(i int) *fabric.Conn {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := fabric.Dial(ctx, cl.cns[i].tcpTrid(), string(cl.nqn), string(cl.initiator))
	require.NoError(cl.t, err)
	cl.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func cnStatus(t testing.TB, out []*agentpb.ObjectStatus, kind agentpb.Kind, id string) *agentpb.ObjectStatus {
	t.Helper()
	for _, o := range out {
		if o.GetKind() == kind && o.GetId() == id {
			return o
		}
	}
	require.Failf(t, "no status", "%s %s in %v", kind, id, out)
	return nil
}

// cnPattern is deterministic test data.
func cnPattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i/4096) ^ seed
	}
	return b
}

// wantPrimaryObjects is what a primary of cl holds, nothing more.
func (cl *cnCluster) wantPrimaryObjects(exported bool) []string {
	out := []string{"raid " + nvmeof.RaidName(cl.daID), "lvs " + nvmeof.DALvstoreName(cl.daID)}
	for _, vd := range cl.vds {
		out = append(out, "ctrl "+nvmeof.VDControllerName(vd))
	}
	if exported {
		out = append(out, "sub "+string(cl.nqn))
	}
	sort.Strings(out)
	return out
}

func (cl *cnCluster) wantSecondaryObjects() []string {
	return []string{"ctrl " + nvmeof.ExpControllerName(cl.expID), "sub " + string(cl.nqn)}
}

func (cl *cnCluster) String() string {
	return fmt.Sprintf("da %s epoch %d primary %d", cl.daID, cl.epoch, cl.primary)
}

// cnRecorder is a unix-socket proxy in front of a fake SPDK that records
// every request (method and params) in the order SPDK receives them.
type cnRecorder struct {
	path string
	mu   sync.Mutex
	reqs []cnRequest
}

type cnRequest struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

func newCNRecorder(t testing.TB, target string) *cnRecorder {
	t.Helper()
	dir, err := os.MkdirTemp("", "cnrec")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	r := &cnRecorder{path: filepath.Join(dir, "rec.sock")}
	ln, err := net.Listen("unix", r.path)
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.serve(c, target)
			}()
		}
	}()
	return r
}

// serve copies one client connection to the target and back, decoding the
// requests on the way.
func (r *cnRecorder) serve(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("unix", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, up)
		_ = c.Close()
	}()
	dec := json.NewDecoder(io.TeeReader(c, up))
	for {
		var req cnRequest
		if err := dec.Decode(&req); err != nil {
			if !errors.Is(err, io.EOF) {
				_ = up.Close()
			}
			break
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, req)
		r.mu.Unlock()
	}
	_ = up.Close()
	<-done
}

// take returns the recorded requests and forgets them.
func (r *cnRecorder) take() []cnRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// mutating returns the state-changing requests of reqs, in order.
func cnMutating(reqs []cnRequest) []cnRequest {
	var out []cnRequest
	for _, q := range reqs {
		if !spdk.IsReadOnly(q.Method) {
			out = append(out, q)
		}
	}
	return out
}

func cnMethods(reqs []cnRequest) []string {
	out := make([]string, len(reqs))
	for i, q := range reqs {
		out[i] = q.Method
	}
	return out
}
