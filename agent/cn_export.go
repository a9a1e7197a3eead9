package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// cnExport is the wanted shape of one exporter subsystem on this node.
type cnExport struct {
	nqn       nvmeof.NQN
	serial    string
	minCntl   uint16
	maxCntl   uint16
	bdev      string   // the bdev nvmf_subsystem_add_ns names
	bdevNames []string // what nvmf_get_subsystems may report for it
	nsUUID    string
	ana       nvmeof.ANAState
	hosts     []string // sorted
}

// export returns the identity every controller of the exporter shares
// (NQN, serial, model, namespace UUID) plus this controller's own
// controller-ID range, ANA state and hosts.
func (t *cnTask) export(x *cnExp, ana nvmeof.ANAState, hosts []string) cnExport {
	return cnExport{nqn: x.nqn, serial: nvmeof.SerialNumber(x.nqn), minCntl: t.c.minCntl, maxCntl: t.c.maxCntl,
		nsUUID: nvmeof.NamespaceUUID(x.nqn), ana: ana, hosts: hosts}
}

// runSecondary unloads a primary stack this node may still hold (demotion),
// then, per exporter at once, attaches the primary's export and re-exports
// it under the same identity. Not before the array is initialized: a
// primary exports to its secondaries before then (exportPrimary), but no
// host may write through a re-export until the lvstore's creation is
// committed.
func (t *cnTask) runSecondary(ctx context.Context) {
	if t.raid != nil {
		t.n.log.Info("demoting: unloading the disk array", "da", t.c.daID, "cntlr", t.c.id, "epoch", t.c.epoch)
		if err := t.unloadStack(ctx, t.unwantedVDs()); err != nil {
			t.fail(err)
			return
		}
	}
	cnForEach(ctx, len(t.c.exps), t.c.exps, func(ctx context.Context, x *cnExp) {
		if x.err != nil {
			return
		}
		if !t.c.initDone {
			t.portErr(x, t.deleteSub(ctx, x,
				fmt.Errorf("%w: disk array %s is not initialized yet", errCNNotReady, t.c.daID)))
			return
		}
		if err := t.ensureExpCtrl(ctx, x); err != nil {
			t.portErr(x, err)
			t.note(err)
			return
		}
		w := t.export(x, nvmeof.NonOptimized, x.hosts(false))
		w.bdev = nvmeof.ExpBdevName(x.id)
		w.bdevNames = []string{w.bdev}
		if err := t.reconcileExport(ctx, x, w); err != nil {
			t.portErr(x, err)
		}
	})
}

// ensureExpCtrl makes sure the primary's export of x is attached: to the
// primary's listener, as this controller's host, not failed, with its bdev.
// A stale controller (pointing at an old primary, failed) is detached
// first, after taking its bdev out of the re-export (the subsystem stays).
func (t *cnTask) ensureExpCtrl(ctx context.Context, x *cnExp) error {
	name, bdev := nvmeof.ExpControllerName(x.id), nvmeof.ExpBdevName(x.id)
	ctrl := t.expCtrls[x.id]
	if ctrl != nil && cnCtrlrMatches(ctrl, t.c.primaryListener, x.nqn, t.c.hostNQN) && !cnCtrlrFailed(ctrl) &&
		t.snap.bdevs[bdev] != nil {
		if st := cnCtrlrState(ctrl); st != spdk.CtrlrEnabled {
			t.note(fmt.Errorf("%w: exporter %s: path to the primary %s", errCNNotReady, x.id, st))
		}
		return nil
	}
	if ctrl != nil {
		if err := t.dropProxy(ctx, x); err != nil {
			return err
		}
		t.n.log.Debug("stale export controller detached", "exp", x.id, "state", cnCtrlrState(ctrl))
	}
	return t.attach(ctx, name, t.c.primaryListener, x.nqn, t.c.hostNQN, cnExpLossTimeoutSec)
}

// dropExportControllers is promotion's first step: a primary proxies
// nothing, and an attached export would clash with the DA lvol once
// examine brings it back (same UUID). The re-export's namespace goes with
// it (detachProxy); the subsystem stays for the host. The namespaces
// leave asynchronously: they are waited for in t.leaving (awaitLeaving,
// or the sync's awaitLeavingAll for every promoted array at once).
func (t *cnTask) dropExportControllers(ctx context.Context) error {
	var errs []error
	for _, x := range t.c.exps {
		if x.err != nil || t.expCtrls[x.id] == nil {
			continue
		}
		served, err := t.detachProxy(ctx, x)
		if err == nil {
			t.expCtrls[x.id] = nil
			if served {
				t.leaving = append(t.leaving, x)
			}
			t.n.log.Info("promoting: export controller detached", "da", t.c.daID, "exp", x.id)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// awaitLeaving waits, one subsystem at a time, for the namespaces of the
// proxies this task detached to leave.
func (t *cnTask) awaitLeaving(ctx context.Context) error {
	for len(t.leaving) > 0 {
		if err := t.awaitGone(ctx, t.leaving[0]); err != nil {
			return err
		}
		t.leaving = t.leaving[1:]
	}
	return nil
}

// reconcileExport converges subsystem w.nqn: identity (re-created when it
// differs), exactly one namespace, exactly the agent's listener with w's
// ANA state, exactly w's hosts (extra hosts removed first: that drops
// their connections).
func (t *cnTask) reconcileExport(ctx context.Context, x *cnExp, w cnExport) error {
	err := t.reconcileExportOnce(ctx, w)
	if err != nil {
		t.n.ana.forget(w.nqn) // whatever ANA state it has now, read it next time
	}
	return err
}

func (t *cnTask) reconcileExportOnce(ctx context.Context, w cnExport) error {
	if t.transportErr != nil {
		return t.transportErr
	}
	c := t.n.c
	ref := t.subs[w.nqn]
	ss := ref.ss
	var ls []spdk.Listener
	if ss != nil {
		var err error
		if ls, err = t.listeners(ctx, ss); err != nil {
			return err
		}
		if !w.sameIdentity(ss, ls) {
			t.n.log.Info("exporter subsystem differs, re-creating", "nqn", w.nqn)
			if err := t.deleteSubs(ctx, []nvmeof.NQN{w.nqn}); err != nil {
				return err
			}
			ss = nil
		}
	}
	if ss == nil {
		t.n.ana.forget(w.nqn)
		err := c.NvmfCreateSubsystem(ctx, spdk.NvmfCreateSubsystemParams{
			NQN: string(w.nqn), SerialNumber: w.serial, ModelNumber: nvmeof.ModelNumber, AllowAnyHost: new(false),
			ANAReporting: new(true), MinCntlID: new(w.minCntl), MaxCntlID: new(w.maxCntl),
		})
		if err != nil {
			return fmt.Errorf("agent: creating subsystem %s: %w", w.nqn, subsystemCreateErr(err))
		}
		ss = &spdk.Subsystem{NQN: string(w.nqn)}
		ref.ss = ss
	}
	if err := t.reconcileNamespace(ctx, ss, w); err != nil {
		return err
	}
	if err := t.reconcileListener(ctx, ss, ls, w); err != nil {
		return err
	}
	return t.reconcileHosts(ctx, ss, w)
}

// sameIdentity reports whether ss can stay: same serial, model and
// controller-ID range, no allow_any_host, and ANA reporting on (SPDK shows
// a listener's ana_state only then).
func (w cnExport) sameIdentity(ss *spdk.Subsystem, ls []spdk.Listener) bool {
	if ss.SerialNumber != w.serial || ss.ModelNumber != nvmeof.ModelNumber || ss.AllowAnyHost ||
		ss.MinCntlID != w.minCntl || ss.MaxCntlID != w.maxCntl {
		return false
	}
	for _, l := range ls {
		if l.State(1) == "" {
			return false
		}
	}
	return true
}

func (t *cnTask) reconcileNamespace(ctx context.Context, ss *spdk.Subsystem, w cnExport) error {
	kept := false
	err := t.removeNamespaces(ctx, w.nqn, func(ns spdk.SubsystemNamespace) bool {
		ok := !kept && ns.NSID == 1 && slices.Contains(w.bdevNames, ns.BdevName) && strings.EqualFold(ns.UUID, w.nsUUID)
		kept = kept || ok
		return !ok
	})
	if err != nil || kept {
		return err
	}
	_, err = t.n.c.NvmfSubsystemAddNs(ctx, spdk.NvmfSubsystemAddNsParams{NQN: string(w.nqn),
		Namespace: spdk.Namespace{NSID: 1, UUID: w.nsUUID, BdevName: w.bdev}})
	if err != nil {
		return fmt.Errorf("agent: adding namespace %s to %s: %w", w.bdev, w.nqn, err)
	}
	ss.Namespaces = append(ss.Namespaces, spdk.SubsystemNamespace{NSID: 1, BdevName: w.bdev, UUID: w.nsUUID})
	return nil
}

// removeNamespaces removes the namespaces of subsystem nqn (as this task
// knows it) for which drop is true, withdrawing the node's path first.
func (t *cnTask) removeNamespaces(ctx context.Context, nqn nvmeof.NQN, drop func(spdk.SubsystemNamespace) bool) error {
	ref := t.subs[nqn]
	if ref == nil || ref.ss == nil {
		return nil
	}
	ss := ref.ss
	kept := ss.Namespaces[:0]
	var errs []error
	for _, ns := range ss.Namespaces {
		if !drop(ns) {
			kept = append(kept, ns)
			continue
		}
		if err := t.withdraw(ctx, ref); err != nil {
			errs = append(errs, err)
			kept = append(kept, ns)
			continue
		}
		err := t.n.c.NvmfSubsystemRemoveNs(ctx, spdk.NvmfSubsystemRemoveNsParams{NQN: string(nqn), NSID: ns.NSID})
		if err != nil {
			errs = append(errs, fmt.Errorf("agent: removing namespace %d of %s: %w", ns.NSID, nqn, err))
			kept = append(kept, ns)
		}
	}
	ss.Namespaces = kept
	return errors.Join(errs...)
}

// dropProxy takes export controller x out of the re-export and detaches
// it, and waits for its namespace to leave (detachProxy, awaitGone).
func (t *cnTask) dropProxy(ctx context.Context, x *cnExp) error {
	served, err := t.detachProxy(ctx, x)
	if err != nil || !served {
		return err
	}
	return t.awaitGone(ctx, x)
}

// detachProxy takes export controller x out of the re-export and detaches
// it; it reports whether the re-export served its bdev, whose namespace
// then leaves asynchronously (awaitGone). The order matters on real SPDK:
// the controller goes first and its namespace follows (SPDK hot-removes
// it). Removing the namespace first pauses the subsystem until its I/O
// completes, and I/O this proxy sent to a primary whose path is now ANA
// inaccessible (the old primary withdrew it while demoting) never
// completes: bdev_nvme (v24.01) requeues I/O on an inaccessible path for
// as long as the connection lives, so the pause, the agent's RPC and
// every later change to the subsystem wait forever. Detaching marks the
// controller as going away, which fails that I/O. The host's path is
// withdrawn first, so hosts retry elsewhere meanwhile.
func (t *cnTask) detachProxy(ctx context.Context, x *cnExp) (served bool, err error) {
	bdev := nvmeof.ExpBdevName(x.id)
	ref := t.subs[x.nqn]
	served = ref != nil && ref.ss != nil && slices.ContainsFunc(ref.ss.Namespaces,
		func(ns spdk.SubsystemNamespace) bool { return ns.BdevName == bdev })
	if served {
		if err := t.withdraw(ctx, ref); err != nil {
			return false, err
		}
	}
	if err := t.detach(ctx, nvmeof.ExpControllerName(x.id)); err != nil {
		return false, err
	}
	return served, nil
}

// awaitGone waits for the namespace of x's proxy bdev to leave x's
// subsystem, so that the next change to the subsystem does not meet
// SPDK's pause in progress.
func (t *cnTask) awaitGone(ctx context.Context, x *cnExp) error {
	bdev := nvmeof.ExpBdevName(x.id)
	tick := time.NewTicker(cnGonePoll)
	defer tick.Stop()
	for {
		ss, err := t.n.c.NvmfGetSubsystems(ctx, spdk.NvmfGetSubsystemsParams{NQN: string(x.nqn)})
		if err != nil {
			return fmt.Errorf("agent: waiting for the re-export of %s to leave %s: %w", bdev, x.nqn, err)
		}
		if len(ss) == 1 && t.proxyGone(x, &ss[0]) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: waiting for the re-export of %s to leave %s: %w", bdev, x.nqn, ctx.Err())
		case <-tick.C:
		}
	}
}

// cnGonePoll is how often a proxy's leaving namespace is looked for.
const cnGonePoll = 20 * time.Millisecond

// proxyGone reports whether listed subsystem ss (x's) no longer holds the
// namespace of x's proxy bdev, and if so forgets it in the task's copy.
func (t *cnTask) proxyGone(x *cnExp, ss *spdk.Subsystem) bool {
	bdev := nvmeof.ExpBdevName(x.id)
	if slices.ContainsFunc(ss.Namespaces, func(ns spdk.SubsystemNamespace) bool { return ns.BdevName == bdev }) {
		return false
	}
	ref := t.subs[x.nqn]
	ref.ss.Namespaces = slices.DeleteFunc(ref.ss.Namespaces, func(ns spdk.SubsystemNamespace) bool { return ns.BdevName == bdev })
	return true
}

// withdraw makes this node's path to subsystem ref ANA inaccessible before
// a namespace leaves it (a role change: the array is unloaded on demotion,
// the proxy replaced on promotion or re-pointing). SPDK answers I/O for a
// namespace that is not there with Invalid Namespace and do-not-retry,
// which a Linux host returns to the application at once; on an
// inaccessible path it answers an ANA error, and hosts retry on another
// path or queue until a path is usable again. The removal comes one RPC
// round trip after the change, so I/O in flight meanwhile gets the ANA
// error. reconcileListener sets the wanted state once the new namespace
// is in place.
func (t *cnTask) withdraw(ctx context.Context, ref *cnSubRef) error {
	if ref.withdrawn {
		return nil
	}
	listens := false
	for _, la := range ref.ss.ListenAddresses {
		listens = listens || cnSameTransport(la.TRType, la.AdrFam, la.TRAddr, la.TRSvcID, t.n.listener)
	}
	if !listens {
		return nil
	}
	err := t.n.c.NvmfSubsystemListenerSetANAState(ctx, spdk.NvmfSubsystemListenerSetANAStateParams{NQN: ref.ss.NQN,
		ListenAddress: t.listenAddress(), ANAState: string(nvmeof.Inaccessible)})
	if err != nil {
		t.n.ana.forget(nvmeof.NQN(ref.ss.NQN))
		return fmt.Errorf("agent: withdrawing the path to %s (ANA inaccessible): %w", ref.ss.NQN, err)
	}
	t.n.ana.set(nvmeof.NQN(ref.ss.NQN), nvmeof.Inaccessible)
	ref.withdrawn = true
	return nil
}

func (t *cnTask) listenAddress() spdk.ListenAddress {
	l := t.n.listener
	return spdk.ListenAddress{TRType: l.TrType, TRAddr: l.TrAddr, AdrFam: l.AdrFam, TRSvcID: l.TrSvcID}
}

// reconcileListener keeps exactly the agent's listener, with w's ANA state.
func (t *cnTask) reconcileListener(ctx context.Context, ss *spdk.Subsystem, ls []spdk.Listener, w cnExport) error {
	c := t.n.c
	found := false
	for _, la := range ss.ListenAddresses {
		if cnSameTransport(la.TRType, la.AdrFam, la.TRAddr, la.TRSvcID, t.n.listener) {
			found = true
			continue
		}
		err := c.NvmfSubsystemRemoveListener(ctx, spdk.NvmfSubsystemRemoveListenerParams{NQN: ss.NQN,
			ListenAddress: spdk.ListenAddress{TRType: la.TRType, TRAddr: la.TRAddr, AdrFam: la.AdrFam, TRSvcID: la.TRSvcID}})
		if err != nil {
			return fmt.Errorf("agent: removing listener %s:%s of %s: %w", la.TRAddr, la.TRSvcID, ss.NQN, err)
		}
	}
	if !found {
		err := c.NvmfSubsystemAddListener(ctx, spdk.NvmfSubsystemAddListenerParams{NQN: ss.NQN,
			ListenAddress: t.listenAddress(), ANAState: string(w.ana)})
		if err != nil {
			return fmt.Errorf("agent: adding listener %s to %s: %w", t.n.listener, ss.NQN, err)
		}
		t.n.ana.set(w.nqn, w.ana)
		return nil
	}
	withdrawn := t.subs[w.nqn].withdrawn
	for _, l := range ls {
		a := l.Address
		if cnSameTransport(a.TRType, a.AdrFam, a.TRAddr, a.TRSvcID, t.n.listener) && (withdrawn || !strings.EqualFold(l.State(1), string(w.ana))) {
			err := c.NvmfSubsystemListenerSetANAState(ctx, spdk.NvmfSubsystemListenerSetANAStateParams{NQN: ss.NQN,
				ListenAddress: t.listenAddress(), ANAState: string(w.ana)})
			if err != nil {
				return fmt.Errorf("agent: setting ANA state %s on %s: %w", w.ana, ss.NQN, err)
			}
			t.n.log.Info("exporter ANA state set", "nqn", ss.NQN, "ana", w.ana)
			t.n.ana.set(w.nqn, w.ana)
			t.subs[w.nqn].withdrawn = false
		}
	}
	return nil
}

// reconcileHosts makes the allow-list exactly w.hosts: unwanted hosts go
// first (SPDK drops their connections: the fence), then missing ones are
// added.
func (t *cnTask) reconcileHosts(ctx context.Context, ss *spdk.Subsystem, w cnExport) error {
	c := t.n.c
	have := map[string]bool{}
	for _, h := range ss.Hosts {
		have[h.NQN] = true
		if slices.Contains(w.hosts, h.NQN) {
			continue
		}
		if err := c.NvmfSubsystemRemoveHost(ctx, spdk.NvmfSubsystemHostParams{NQN: ss.NQN, Host: h.NQN}); err != nil {
			return fmt.Errorf("agent: removing host %s from %s: %w", h.NQN, ss.NQN, err)
		}
	}
	for _, h := range w.hosts {
		if have[h] {
			continue
		}
		if err := c.NvmfSubsystemAddHost(ctx, spdk.NvmfSubsystemHostParams{NQN: ss.NQN, Host: h}); err != nil {
			return fmt.Errorf("agent: adding host %s to %s: %w", h, ss.NQN, err)
		}
	}
	return nil
}
