package agent

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// cnANARechecks is how many recorded ANA states a sync reads again from
// SPDK (those read longest ago): drift made behind the agent's back is
// repaired within ceil(exporters / cnANARechecks) syncs, at a fixed cost
// per sync however many exporters the node has.
const cnANARechecks = 4

// cnANARecord remembers, per exporter subsystem, the ANA state of this
// node's listener as the agent last set or read it, so that a sync that
// changes nothing need not ask SPDK for it subsystem by subsystem.
//
// nvmf_get_subsystems, the one listing of every subsystem, does not show
// ANA states in v24.01; only nvmf_subsystem_get_listeners does, one
// subsystem per call, and it pauses the subsystem (its I/O) while it
// answers. Asking it for every exporter made a no-op resync of n arrays
// cost n paused subsystems and n round trips.
//
// The record is trusted only while SPDK's listing agrees with it: the
// subsystem is listed, listens on this node's listener, and reports ANA
// groups on its namespaces (so ANA reporting is on). Anything else, any
// failed change, a subsystem this agent deletes or creates, or one a
// listing misses (an SPDK restart) makes the next sync read the listeners
// again. A change of ANA state made behind the agent's back on a subsystem
// it keeps is found by the rechecks (cnANARechecks per sync).
type cnANARecord struct {
	mu    sync.Mutex
	m     map[nvmeof.NQN]*cnANAEntry
	syncs uint64 // syncs begun
}

type cnANAEntry struct {
	state nvmeof.ANAState
	read  uint64 // the sync that last set it or read it from SPDK
	due   bool   // this sync reads it from SPDK again
}

// begin starts a sync: it forgets the subsystems the listing does not
// show and marks up to recheck of the others, read longest ago, due.
func (r *cnANARecord) begin(subs map[nvmeof.NQN]*spdk.Subsystem, recheck int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncs++
	keys := make([]nvmeof.NQN, 0, len(r.m))
	for nqn, e := range r.m {
		e.due = false
		if subs[nqn] == nil {
			delete(r.m, nqn)
			continue
		}
		keys = append(keys, nqn)
	}
	slices.SortFunc(keys, func(a, b nvmeof.NQN) int {
		return cmp.Or(cmp.Compare(r.m[a].read, r.m[b].read), cmp.Compare(a, b))
	})
	for _, nqn := range keys[:min(recheck, len(keys))] {
		r.m[nqn].due = true
	}
}

// get returns the recorded state of nqn, unless there is none or it is due.
func (r *cnANARecord) get(nqn nvmeof.NQN) (nvmeof.ANAState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.m[nqn]
	if e == nil || e.due {
		return "", false
	}
	return e.state, true
}

// set records s as nqn's state, known as of this sync.
func (r *cnANARecord) set(nqn nvmeof.NQN, s nvmeof.ANAState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[nvmeof.NQN]*cnANAEntry{}
	}
	r.m[nqn] = &cnANAEntry{state: s, read: r.syncs}
}

func (r *cnANARecord) forget(nqn nvmeof.NQN) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, nqn)
}

// cnANAReporting reports whether a listed subsystem shows ANA reporting:
// SPDK lists a namespace's ANA group only then. Without namespaces it
// cannot tell.
func cnANAReporting(ss *spdk.Subsystem) bool {
	for _, ns := range ss.Namespaces {
		if ns.ANAGrpID != 0 {
			return true
		}
	}
	return false
}

// listeners returns the listeners of exporter subsystem ss with their ANA
// states: from the record when the listing agrees with it (only this
// node's listener then, which is all reconcileExport looks at besides ANA
// reporting), otherwise from SPDK, which it records.
//
// A subsystem this sync withdrew (cnTask.withdraw) needs no reading
// either, although its namespace is gone and the listing can no longer
// show ANA reporting: SPDK v24.01 sets a listener's ANA state only on a
// subsystem with ANA reporting and only on a listener it has
// (spdk_nvmf_subsystem_set_ana_state: -EINVAL otherwise), reporting is
// fixed when the subsystem is created (nvmf_create_subsystem is the only
// RPC that sets it), and the state the withdrawal set is recorded. That
// spares promotion and demotion one nvmf_subsystem_get_listeners per
// exporter, which pauses the subsystem while SPDK answers.
func (t *cnTask) listeners(ctx context.Context, ss *spdk.Subsystem) ([]spdk.Listener, error) {
	nqn := nvmeof.NQN(ss.NQN)
	listens := false
	for _, la := range ss.ListenAddresses {
		listens = listens || cnSameTransport(la.TRType, la.AdrFam, la.TRAddr, la.TRSvcID, t.n.listener)
	}
	withdrawn := t.subs[nqn] != nil && t.subs[nqn].withdrawn
	if st, ok := t.n.ana.get(nqn); ok && listens && (cnANAReporting(ss) || withdrawn) {
		l := t.n.listener
		return []spdk.Listener{{Address: spdk.TransportID{TRType: l.TrType, AdrFam: l.AdrFam, TRAddr: l.TrAddr, TRSvcID: l.TrSvcID},
			ANAStates: []spdk.ListenerANAState{{ANAGroup: 1, ANAState: string(st)}}}}, nil
	}
	t.n.ana.forget(nqn)
	ls, err := t.n.c.NvmfSubsystemGetListeners(ctx, spdk.NQNParams{NQN: ss.NQN})
	if err != nil {
		return nil, fmt.Errorf("agent: listing the listeners of %s: %w", ss.NQN, err)
	}
	for _, l := range ls {
		a := l.Address
		if st := l.State(1); st != "" && cnSameTransport(a.TRType, a.AdrFam, a.TRAddr, a.TRSvcID, t.n.listener) {
			t.n.ana.set(nqn, nvmeof.ANAState(st))
		}
	}
	return ls, nil
}
