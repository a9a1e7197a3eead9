package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// Clear methods. Every PD lvstore and every VD lvol is created with
// write_zeroes so that a new VD never exposes a previous tenant's data:
// SPDK clears an lvol's clusters with the lvol's method when it frees them
// (on delete), and clears the whole bdev with the lvstore's method when it
// creates the store (data left on a reused disk; not on a malloc bdev the
// same sync made, which SPDK allocates zeroed). "unmap" would be cheaper
// but reads back zeros only where the device guarantees it (malloc, files,
// NVMe with deallocate-reads-zeroes), and "none" (what the original VDA
// sent) leaks the bytes of deleted VDs into new ones.
const (
	dnLvstoreClearMethod = "write_zeroes"
	dnLvolClearMethod    = "write_zeroes"
)

// dnNode reconciles a disk node's SPDK with its desired DnState.
type dnNode struct {
	c        *spdk.Client
	listener nvmeof.TransportID
	log      hclog.Logger
	// inflight bounds the PDs or VDs worked on at once.
	inflight int
	// lvsClear and lvolClear are the clear methods of new lvstores and
	// lvols (dnLvstoreClearMethod, dnLvolClearMethod; tests change them to
	// show what the choice prevents).
	lvsClear, lvolClear string
	// aio decides which files aio PDs may use (the zero policy: none).
	aio aioPolicy
}

// newDNNode returns the disk-node reconciler over c; listener is the
// agent's NVMe-oF listener (--listener-conf), where VD subsystems listen.
func newDNNode(c *spdk.Client, listener nvmeof.TransportID, log hclog.Logger) *dnNode {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &dnNode{c: c, listener: listener, log: log.Named("dn"), inflight: DefaultMaxInFlight,
		lvsClear: dnLvstoreClearMethod, lvolClear: dnLvolClearMethod}
}

// sync converges SPDK to st: it lists what SPDK has, deletes the owned
// objects st does not want (subsystems, lvols, lvstores of removed PDs, PD
// bdevs, in that order), then builds what is missing in dependency order
// (PD bdev, examine, lvstore; per VD the fence, lvol, subsystem, namespace,
// listener and host). It reports the status of every PD and VD of st, and
// of owned objects it failed to delete. A failing object does not stop
// the others. st must be valid (validateRequest).
func (n *dnNode) sync(ctx context.Context, st *agentpb.DnState) []*agentpb.ObjectStatus {
	r := newDNRun(n, st)
	snap, err := n.list(ctx)
	if err != nil {
		return r.failAll(fmt.Errorf("listing SPDK objects: %w", err))
	}
	r.snap = snap
	r.deleteUnwanted(ctx)
	r.transportErr = r.ensureTransport(ctx)
	r.syncPDs(ctx)
	r.syncVDs(ctx)
	return r.statuses(ctx)
}

// dnRun is the work of one sync.
type dnRun struct {
	n      *dnNode
	st     *agentpb.DnState
	wantPD map[string]*agentpb.PdSpec
	wantVD map[string]*agentpb.VdSpec
	vdPD   map[string]string // VD ID -> PD ID
	snap   *dnSnapshot

	pds          map[string]*pdResult
	vdErrs       []error // by position in vds
	vds          []*agentpb.VdSpec
	transportErr error

	mutated atomic.Bool // a state-changing call was sent
	mu      sync.Mutex
	extra   []*agentpb.ObjectStatus // failed deletions
}

func newDNRun(n *dnNode, st *agentpb.DnState) *dnRun {
	r := &dnRun{n: n, st: st, wantPD: map[string]*agentpb.PdSpec{}, wantVD: map[string]*agentpb.VdSpec{},
		vdPD: map[string]string{}, pds: map[string]*pdResult{}}
	for _, pd := range st.GetPds() {
		r.wantPD[pd.GetId()] = pd
		r.pds[pd.GetId()] = &pdResult{spec: pd}
		for _, vd := range pd.GetVds() {
			r.wantVD[vd.GetId()] = vd
			r.vdPD[vd.GetId()] = pd.GetId()
			r.vds = append(r.vds, vd)
		}
	}
	r.vdErrs = make([]error, len(r.vds))
	return r
}

// parallel runs fn(0..count-1), at most n.inflight at a time, and waits.
func (n *dnNode) parallel(count int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(count, max(n.inflight, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= count {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// change runs one state-changing SPDK call and logs it.
func (r *dnRun) change(what string, kv []any, call func() error) error {
	r.mutated.Store(true)
	err := call()
	if err != nil {
		r.n.log.Debug(what+" failed", append(kv, "error", err)...)
		return fmt.Errorf("%s: %w", what, err)
	}
	r.n.log.Debug(what, kv...)
	return nil
}

// failedDelete reports an owned object that could not be deleted.
func (r *dnRun) failedDelete(kind agentpb.Kind, id string, err error) {
	r.n.log.Warn("delete failed", "kind", kind.String(), "id", id, "error", err)
	r.mu.Lock()
	r.extra = append(r.extra, &agentpb.ObjectStatus{Kind: kind, Id: id, Error: err.Error()})
	r.mu.Unlock()
}

// failAll reports err against every PD and VD of the state.
func (r *dnRun) failAll(err error) []*agentpb.ObjectStatus {
	for _, p := range r.pds {
		p.err = err
	}
	for i := range r.vdErrs {
		r.vdErrs[i] = err
	}
	return r.report()
}

// statuses reports every PD (with its lvstore's capacity, re-read when
// anything changed) and VD.
func (r *dnRun) statuses(ctx context.Context) []*agentpb.ObjectStatus {
	if r.mutated.Load() {
		if all, err := r.n.c.BdevLvolGetLvstores(ctx, spdk.LvstoreSelector{}); err == nil {
			r.snap.setLvstores(all)
		} else {
			r.n.log.Debug("re-reading lvstores failed", "error", err)
		}
	}
	out := r.report()
	failed := 0
	for _, o := range out {
		if !o.GetOk() {
			failed++
		}
	}
	r.n.log.Info("synced", "pds", len(r.pds), "vds", len(r.vds), "failed", failed, "changed", r.mutated.Load())
	return out
}

func (r *dnRun) report() []*agentpb.ObjectStatus {
	out := make([]*agentpb.ObjectStatus, 0, len(r.pds)+len(r.vds)+len(r.extra))
	for _, pd := range r.st.GetPds() {
		p := r.pds[pd.GetId()]
		s := &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_PD, Id: pd.GetId(), Ok: p.err == nil}
		if p.err != nil {
			s.Error = p.err.Error()
		}
		if r.snap != nil {
			if ls, ok := r.snap.lvstores[nvmeof.PDLvstoreName(pd.GetId())]; ok && p.err == nil {
				s.TotalBytes = ls.TotalDataClusters * ls.ClusterSize
				s.FreeBytes = ls.FreeClusters * ls.ClusterSize
			}
		}
		out = append(out, s)
	}
	for i, vd := range r.vds {
		s := &agentpb.ObjectStatus{Kind: agentpb.Kind_KIND_VD, Id: vd.GetId(), Ok: r.vdErrs[i] == nil}
		if r.vdErrs[i] != nil {
			s.Error = r.vdErrs[i].Error()
		}
		out = append(out, s)
	}
	return append(out, r.extra...)
}

// errDNState marks SPDK states the disk-node reconciler refuses to repair by
// itself, because repairing them could destroy data it does not own.
var errDNState = errors.New("agent: unexpected SPDK state")
