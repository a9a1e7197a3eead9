package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// cnParallel bounds how many disk arrays one sync works on at once. Real
// SPDK answers one request per ~8 ms poll but pipelines any number, so a
// node with hundreds of arrays must keep many requests in flight (256 or
// 64 made no clear difference to 500 arrays on real SPDK, issue 18).
const cnParallel = 256

// cnNode reconciles a controller node's SPDK with its desired CnState.
// Every sync lists SPDK and converges it (level-triggered); what it keeps
// between syncs only spares reads and waits (ana, lvolMisses), never
// decides what is built. The agent serialises syncs.
type cnNode struct {
	c        *spdk.Client
	listener nvmeof.TransportID
	log      hclog.Logger
	parallel int
	// ana is what the agent knows of its exporters' ANA states (between
	// syncs: see cnANARecord).
	ana cnANARecord
	// lvolMisses are the arrays whose lvol did not show up within
	// cnLvolWait (between syncs: see cnLvolMisses).
	lvolMisses cnLvolMisses
}

// newCNNode returns the controller-node reconciler over c; listener is the
// agent's NVMe-oF listener (--listener-conf), where exporters listen.
func newCNNode(c *spdk.Client, listener nvmeof.TransportID, log hclog.Logger) *cnNode {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &cnNode{c: c, listener: listener, log: log.Named("cn"), parallel: cnParallel}
}

// sync converges SPDK to st and reports one KIND_CNTLR status per
// controller and one KIND_EXP_PORT status per exporter port of st.
//
// Order: list SPDK once; remove owned objects no controller claims
// (subsystems, then raids and their VD controllers, then other
// controllers); then work on every controller's disk array, up to
// cnParallel at once, each creating what is missing in dependency order,
// primaries in two stages (every primary's attaches before any one's raid
// and examine; one array's steps keep their order), secondaries in the
// second. A failure stays with its array.
func (n *cnNode) sync(ctx context.Context, st *agentpb.CnState) []*agentpb.ObjectStatus {
	cntlrs := planCN(st)
	snap, err := listCN(ctx, n.c)
	if err != nil {
		return cnFailAll(cntlrs, err)
	}
	n.ana.begin(snap.subsystems, cnANARechecks)
	n.lvolMisses.begin(cntlrs, snap)
	tasks := make([]*cnTask, len(cntlrs))
	claims := cnClaims{}
	for i, c := range cntlrs {
		tasks[i] = newCNTask(n, c, snap, claims)
	}
	for _, t := range tasks { // after every wanted subsystem is claimed
		t.claimExtraSubs(claims)
	}
	n.removeOrphans(ctx, snap, claims)
	transportErr := n.ensureTransport(ctx, snap, cntlrs)
	// Primaries in two stages, every one's first before any one's second:
	// the attaches, then what examines. SPDK answers an attach only once no
	// examine is running on the node (bdev_nvme_attach_controller waits
	// for them all), so attaches mixed with the examines of other arrays'
	// lvstores waited seconds each (500 arrays on real SPDK: 2.9 s on
	// average). Secondaries wait for no primary: they run in the second
	// stage, beside the primaries' builds.
	build := make([]bool, len(tasks))
	cnForEach(ctx, n.parallel, cnIndexes(len(tasks)), func(ctx context.Context, i int) {
		t := tasks[i]
		t.transportErr = transportErr
		build[i] = !t.c.primary || t.prepare(ctx) && t.attachPrimary(ctx)
	})
	n.awaitLeavingAll(ctx, tasks)
	cnForEach(ctx, n.parallel, cnIndexes(len(tasks)), func(ctx context.Context, i int) {
		switch t := tasks[i]; {
		case !build[i]:
		case t.c.primary:
			t.buildPrimary(ctx)
		case t.prepare(ctx):
			t.runSecondary(ctx)
		}
	})
	out := make([]*agentpb.ObjectStatus, 0, 2*len(tasks))
	for _, t := range tasks {
		out = append(out, t.statuses()...)
	}
	return out
}

// cnLeavingListAt is how many promoted exporters' leaving namespaces make
// awaitLeavingAll read every subsystem in one listing rather than each
// exporter's subsystem in a call of its own.
const cnLeavingListAt = 16

// awaitLeavingAll waits for the namespaces of the proxies the promotions of
// this sync detached (cnTask.leaving) to leave, between the attaches and
// the builds that change those subsystems again: a promotion of 1,000
// arrays looked for each right after its detach, one nvmf_get_subsystems
// each; by the end of the attaches SPDK has removed nearly all, and one
// listing of every subsystem finds them gone. A task whose namespace is
// still there is waited for on its own in its build (awaitLeaving), and a
// failed listing leaves every task to do so.
func (n *cnNode) awaitLeavingAll(ctx context.Context, tasks []*cnTask) {
	pending := 0
	for _, t := range tasks {
		pending += len(t.leaving)
	}
	if pending < cnLeavingListAt {
		return
	}
	subs, err := n.c.NvmfGetSubsystems(ctx, spdk.NvmfGetSubsystemsParams{})
	if err != nil {
		n.log.Debug("listing subsystems for the detached proxies failed", "error", err)
		return
	}
	byNQN := make(map[nvmeof.NQN]*spdk.Subsystem, len(subs))
	for i := range subs {
		byNQN[nvmeof.NQN(subs[i].NQN)] = &subs[i]
	}
	for _, t := range tasks {
		t.leaving = slices.DeleteFunc(t.leaving, func(x *cnExp) bool {
			ss := byNQN[x.nqn]
			return ss != nil && t.proxyGone(x, ss)
		})
	}
}

// ensureTransport creates the listener's transport (TCP) when an exporter
// needs it and SPDK has none, as after an SPDK restart.
func (n *cnNode) ensureTransport(ctx context.Context, snap *cnSnapshot, cs []*cnCntlr) error {
	tr := strings.ToUpper(n.listener.TrType)
	if snap.transports[tr] {
		return nil
	}
	need := false
	for _, c := range cs {
		need = need || (c.err == nil && len(c.exps) > 0)
	}
	if !need {
		return nil
	}
	err := n.c.NvmfCreateTransport(ctx, spdk.NvmfCreateTransportParams{TRType: tr})
	if err != nil && !errors.Is(err, spdk.ErrExists) {
		return fmt.Errorf("agent: creating the %s transport: %w", tr, err)
	}
	return nil
}

// cnForEach runs fn for every item, at most limit at once, and returns
// when all are done. Items start in order. The workers are min(limit,
// len(items)) goroutines that take the next item when they finish one, not
// a goroutine per item: a promotion of 1,000 arrays ran 1,000 short-lived
// goroutines per stage, each growing its stack anew to the depth of an
// SPDK call. A single item runs on the caller's goroutine.
func cnForEach[T any](ctx context.Context, limit int, items []T, fn func(context.Context, T)) {
	if limit < 1 {
		limit = 1
	}
	if len(items) == 1 {
		fn(ctx, items[0])
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(limit, len(items)) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(items)) {
					return
				}
				fn(ctx, items[i])
			}
		})
	}
	wg.Wait()
}

// cnFailAll reports err for every object of cs.
func cnFailAll(cs []*cnCntlr, err error) []*agentpb.ObjectStatus {
	out := make([]*agentpb.ObjectStatus, 0, 2*len(cs))
	for _, c := range cs {
		out = append(out, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_CNTLR, Id: c.id, Error: err.Error()})
		for _, x := range c.exps {
			out = append(out, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_EXP_PORT, Id: x.portID, Error: err.Error()})
		}
		for _, s := range c.snaps {
			out = append(out, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_SNAP, Id: s.id, Error: err.Error()})
		}
		for _, cl := range c.clones {
			out = append(out, &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_CLONE, Id: cl.id, Error: err.Error()})
		}
	}
	return out
}

// cnClaims records the SPDK objects some controller of the desired state
// owns: everything else that carries a CN prefix is an orphan.
type cnClaims map[string]bool

func (c cnClaims) ctrl(name string) { c["ctrl "+name] = true }
func (c cnClaims) raid(name string) { c["raid "+name] = true }
func (c cnClaims) sub(n nvmeof.NQN) { c["sub "+string(n)] = true }

// cnTask is the work on one controller's disk array during one sync. It
// starts from copies of the snapshot's objects of that array and keeps
// them up to date as it changes SPDK.
type cnTask struct {
	n    *cnNode
	c    *cnCntlr
	snap *cnSnapshot

	raid      *spdk.RaidBdev
	lvs       *spdk.Lvstore
	lvol      *spdk.Bdev
	vdCtrls   map[string]*spdk.NvmeController // by name: the spec's VDs and the raid's members
	expCtrls  map[string]*spdk.NvmeController // by exporter ID
	subs      map[nvmeof.NQN]*cnSubRef        // the exporters' subsystems; fixed keys, see cnSubRef
	exported  []string                        // bdevs of this array an exporter may hold
	extraSubs []nvmeof.NQN                    // unwanted subsystems exporting them

	transportErr   error
	keepRaid       bool // the listed raid is the wanted one (attachPrimary)
	raidUnverified bool // createRaid made the raid and nothing showed its bdev yet (verifyRaid)
	lvsMade        bool // ensureLvstore created the DA lvstore: it holds no lvol yet

	vols   map[string]*cnVolume // the DA's snapshot and clone lvols by name (cn_snap.go); nil until loaded
	volErr error                // they could not be listed

	leaving []*cnExp // exporters whose proxy was detached and whose namespace has yet to be seen gone

	mu       sync.Mutex
	fatal    error            // the controller could not be built
	notes    []error          // non-fatal problems of the controller
	portErrs map[string]error // by port ID
	// secondariesOnly: the primary's ports whose only error is that the
	// array is not initialized yet, and whose subsystem admits the
	// secondaries (exportPrimary).
	secondariesOnly map[string]bool
}

func newCNTask(n *cnNode, c *cnCntlr, snap *cnSnapshot, claims cnClaims) *cnTask {
	t := &cnTask{n: n, c: c, snap: snap, vdCtrls: map[string]*spdk.NvmeController{},
		expCtrls: map[string]*spdk.NvmeController{}, subs: map[nvmeof.NQN]*cnSubRef{}, portErrs: map[string]error{},
		secondariesOnly: map[string]bool{}}
	if c.daID == "" {
		return t
	}
	raidName := nvmeof.RaidName(c.daID)
	claims.raid(raidName)
	t.raid = snap.raids[raidName]
	if l := snap.lvstores[nvmeof.DALvstoreName(c.daID)]; l != nil {
		t.lvs = l
		t.lvol = snap.bdevs[nvmeof.LvolAlias(l.Name, nvmeof.DALvolName(c.daID))]
	}
	addVD := func(name string) {
		claims.ctrl(name)
		if ctrl := snap.ctrlrs[name]; ctrl != nil {
			t.vdCtrls[name] = ctrl
		}
	}
	for _, vd := range c.vds {
		addVD(nvmeof.VDControllerName(vd.id))
	}
	if t.raid != nil {
		for _, m := range t.raid.BaseBdevsList {
			if nm, ok := ownedCN(m.Name, nvmeof.KindVDController); ok && nm.NSID == 1 {
				addVD(nvmeof.VDControllerName(nm.ID))
			}
		}
	}
	if t.lvol != nil {
		t.exported = append(t.exported, t.lvol.Name)
	}
	t.exported = append(t.exported, t.volumeBdevs()...)
	for _, x := range c.exps {
		if x.err != nil {
			continue
		}
		name := nvmeof.ExpControllerName(x.id)
		claims.ctrl(name)
		t.expCtrls[x.id] = snap.ctrlrs[name]
		t.exported = append(t.exported, nvmeof.ExpBdevName(x.id))
		claims.sub(x.nqn)
		ref := &cnSubRef{}
		if ss := snap.subsystems[x.nqn]; ss != nil {
			cp := *ss
			cp.Namespaces = append([]spdk.SubsystemNamespace(nil), ss.Namespaces...)
			ref.ss = &cp
		}
		t.subs[x.nqn] = ref
	}
	return t
}

// cnSubRef holds a task's copy of one exporter subsystem (nil: absent).
// The task's map of them never changes after newCNTask, so the goroutines
// working on different exporters only write to their own cnSubRef.
type cnSubRef struct {
	ss *spdk.Subsystem
	// withdrawn: this sync made the node's listener ANA inaccessible
	// (cnTask.withdraw), whatever the listing said before.
	withdrawn bool
}

// claimExtraSubs claims the exporter subsystems that export one of this
// array's bdevs without being wanted: the task deletes them first, before
// it unloads anything under them.
func (t *cnTask) claimExtraSubs(claims cnClaims) {
	seen := map[nvmeof.NQN]bool{}
	for _, b := range t.exported {
		for _, nqn := range t.snap.exportersOf[b] {
			if !seen[nqn] && !claims["sub "+string(nqn)] {
				seen[nqn] = true
				t.extraSubs = append(t.extraSubs, nqn)
			}
		}
	}
	slices.Sort(t.extraSubs)
	for _, nqn := range t.extraSubs {
		claims.sub(nqn)
	}
}

// prepare starts converging this controller: it reports a controller the
// plan refused and deletes the unwanted subsystems that export its bdevs.
// It returns whether the work goes on (problems end up in the task's
// statuses).
func (t *cnTask) prepare(ctx context.Context) bool {
	if t.c.err != nil {
		t.fatal = t.c.err
		return false
	}
	if err := t.deleteSubs(ctx, t.extraSubs); err != nil {
		t.fail(err)
		return false
	}
	return true
}

func (t *cnTask) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fatal == nil {
		t.fatal = err
	}
}

func (t *cnTask) note(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.notes = append(t.notes, err)
}

func (t *cnTask) portErr(x *cnExp, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.portErrs[x.portID] == nil {
		t.portErrs[x.portID] = err
	}
}

// statuses reports the controller, then each of its exporter ports.
func (t *cnTask) statuses() []*agentpb.ObjectStatus {
	errs := append([]error{t.fatal}, t.notes...)
	// Initialized: the lvstore and the DA lvol exist. Not the lvstore
	// alone: an initialized array never gets a new lvol (ensureLvol), so
	// one whose lvol could not be made stays uninitialized until it is.
	cs := &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_CNTLR, Id: t.c.id, Ok: true,
		DaInitialized: t.c.primary && t.c.err == nil && t.lvs != nil && t.lvol != nil}
	if err := errors.Join(errs...); err != nil {
		cs.Ok, cs.Error = false, err.Error()
	}
	if cs.DaInitialized && t.fatal == nil && t.lvol != nil {
		cs.SizeBytes = t.lvol.SizeBytes() // what the monitor records as the applied size
	}
	out := []*agentpb.ObjectStatus{cs}
	for _, x := range t.c.exps {
		ps := &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_EXP_PORT, Id: x.portID, Ok: true}
		err := x.err
		if err == nil {
			err = t.portErrs[x.portID]
		}
		if err == nil && t.fatal != nil {
			err = fmt.Errorf("%w: controller %s: %w", errCNNotReady, t.c.id, t.fatal)
		}
		if err != nil {
			ps.Ok, ps.Error = false, err.Error()
			ps.SecondariesOnly = t.secondariesOnly[x.portID] && x.err == nil && t.fatal == nil
		}
		out = append(out, ps)
	}
	return append(out, t.volumeStatuses()...)
}
