package vda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// MaxExporterHosts is how many hosts one exporter admits at most.
const MaxExporterHosts = 64

// ExporterSpec is what creates an exporter. Its hosts are InitiatorNQN
// (if set: the first host) and HostNQNs: 1 to MaxExporterHosts distinct
// host NQNs (InitiatorNQN may be repeated in HostNQNs; it counts once).
type ExporterSpec struct {
	DAName       string
	Name         string
	Description  string
	InitiatorNQN string
	HostNQNs     []string
	// SnapName or CloneName (at most one) export that snapshot (read-only:
	// SPDK fails writes) or clone of the DA instead of its volume. It must
	// exist and have no exporter yet; it need not be Ready: the exporter's
	// port on the primary reports "not ready" until the primary holds it.
	SnapName  string
	CloneName string
}

// ExporterUpdate changes an exporter; nil and empty fields are left
// alone. InitiatorNQN replaces the first host; then RemoveHostNQNs are
// removed (their connections are dropped) and AddHostNQNs are admitted.
// Adding a host the exporter admits, or removing one it does not, changes
// nothing, so a retried modify is harmless; removing every host is
// refused (delete the exporter instead).
type ExporterUpdate struct {
	Description    *string
	InitiatorNQN   *string
	AddHostNQNs    []string
	RemoveHostNQNs []string
}

func expWhat(da, exp string) string { return fmt.Sprintf("exporter %q of disk array %q", exp, da) }

func validateNewExpNames(da, exp string) error {
	if err := ValidateName(nvmeof.ResourceDA, da); err != nil {
		return err
	}
	return ValidateNewName(nvmeof.ResourceExporter, exp)
}

func validateExpNames(da, exp string) error {
	if err := ValidateName(nvmeof.ResourceDA, da); err != nil {
		return err
	}
	return ValidateName(nvmeof.ResourceExporter, exp)
}

// ParseHostNQNs validates a list of host NQNs given in field: each as
// ParseInitiatorNQN does, no two the same, at most MaxExporterHosts. It
// returns them normalised, in order (an empty list is valid here).
func ParseHostNQNs(field string, nqns []string) ([]string, error) {
	if len(nqns) > MaxExporterHosts {
		return nil, fmt.Errorf("%w: %s: %d host NQNs, at most %d", ErrInvalidArgument, field, len(nqns), MaxExporterHosts)
	}
	out := make([]string, 0, len(nqns))
	for i, s := range nqns {
		n, err := nvmeof.ParseHostNQN(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%d]: %w", ErrInvalidArgument, field, i, err)
		}
		if slices.Contains(out, n.String()) {
			return nil, fmt.Errorf("%w: %s: host NQN %q is listed twice", ErrInvalidArgument, field, n)
		}
		out = append(out, n.String())
	}
	return out, nil
}

// specHosts returns the hosts a create asks for: the initiator first.
func specHosts(spec ExporterSpec) ([]string, error) {
	hosts, err := ParseHostNQNs("host_nqns", spec.HostNQNs)
	if err != nil {
		return nil, err
	}
	if spec.InitiatorNQN != "" {
		first, err := ParseInitiatorNQN(spec.InitiatorNQN)
		if err != nil {
			return nil, err
		}
		hosts = append([]string{first}, slices.DeleteFunc(hosts, func(h string) bool { return h == first })...)
	}
	switch {
	case len(hosts) == 0:
		return nil, fmt.Errorf("%w: an exporter needs a host: initiator_nqn or host_nqns", ErrInvalidArgument)
	case len(hosts) > MaxExporterHosts:
		return nil, fmt.Errorf("%w: initiator_nqn and host_nqns name %d hosts, at most %d", ErrInvalidArgument, len(hosts), MaxExporterHosts)
	}
	return hosts, nil
}

// UnmarshalJSON decodes a stored exporter; a record of a version that knew
// one host only (initiator_nqn, no host_nqns) gets that host as its list.
func (e *Exporter) UnmarshalJSON(b []byte) error {
	type plain Exporter // no methods: no recursion
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if len(p.HostNQNs) == 0 && p.InitiatorNQN != "" {
		p.HostNQNs = []string{p.InitiatorNQN}
	}
	if len(p.HostNQNs) > 0 {
		p.InitiatorNQN = p.HostNQNs[0]
	}
	*e = Exporter(p)
	return nil
}

// expVolume names the volume an exporter carries, for the one-exporter-
// per-volume rule: "" is the DA's own volume.
func expVolume(e Exporter) string {
	switch {
	case e.SnapName != "":
		return "snapshot " + strconv.Quote(e.SnapName)
	case e.CloneName != "":
		return "clone " + strconv.Quote(e.CloneName)
	}
	return ""
}

// volumeWhat describes an exporter's volume in messages.
func volumeWhat(e Exporter) string {
	if v := expVolume(e); v != "" {
		return fmt.Sprintf("%s of disk array %q", v, e.DAName)
	}
	return fmt.Sprintf("the volume of disk array %q", e.DAName)
}

// ExporterRecord is a stored exporter with the store revision that
// created it: what decides which exporter of a volume serves it.
type ExporterRecord struct {
	Exporter       *Exporter
	CreateRevision int64
}

// SupersededExporters applies the one-exporter-per-volume rule to the
// stored exporters of one DA. Versions before it accepted a second
// exporter of a volume, which SPDK cannot serve (the first subsystem
// claims the bdev); of such exporters only the one created first (lowest
// CreateRevision, then name) is served, so the exporter that worked keeps
// working whatever the order controllers build them in. It returns, by
// the ID of each exporter that is not served, the one that serves its
// volume.
func SupersededExporters(exps []ExporterRecord) map[string]*Exporter {
	byVolume := map[string]ExporterRecord{}
	for _, r := range exps {
		v := expVolume(*r.Exporter)
		if w, ok := byVolume[v]; !ok || r.CreateRevision < w.CreateRevision ||
			(r.CreateRevision == w.CreateRevision && r.Exporter.Name < w.Exporter.Name) {
			byVolume[v] = r
		}
	}
	var out map[string]*Exporter
	for _, r := range exps {
		if w := byVolume[expVolume(*r.Exporter)]; w.Exporter != r.Exporter {
			if out == nil {
				out = map[string]*Exporter{}
			}
			out[r.Exporter.ID] = w.Exporter
		}
	}
	return out
}

// SupersededMessage is the status error of an exporter that is not served
// because exporter by serves its volume.
func SupersededMessage(by *Exporter) string {
	return fmt.Sprintf("not served: exporter %q, created first, exports %s (a volume has one exporter); "+
		"delete this exporter and add its hosts to %q with `vda exp modify --add-host-nqn`", by.Name, volumeWhat(*by), by.Name)
}

// txOtherExporter returns the exporter of DA da, other than name, that
// exports the same volume as e (nil if none). The caller's transaction
// writes the DA (its exporter count), which guards the listing: two
// creates of one DA cannot both commit on the same list.
func txOtherExporter(tx *store.Tx, da, name string, e Exporter) (*Exporter, error) {
	kvs, err := tx.List(KeyExps(da))
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		var o Exporter
		if err := json.Unmarshal(kv.Value, &o); err != nil {
			return nil, fmt.Errorf("vda: decode %s: %w", kv.Key, err)
		}
		if o.Name != name && expVolume(o) == expVolume(e) {
			return &o, nil
		}
	}
	return nil, nil
}

// sameHosts compares host lists as sets (a retried create may list them
// in another order).
func sameHosts(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(h string) bool { return !slices.Contains(b, h) })
}

// CreateExporter exports a DA to its hosts through every controller. A
// volume has one exporter: a second one is refused (FailedPrecondition,
// naming the first); add the host to the first instead.
func (c *Cluster) CreateExporter(ctx context.Context, spec ExporterSpec) (Exporter, error) {
	if err := validateNewExpNames(spec.DAName, spec.Name); err != nil {
		return Exporter{}, err
	}
	if err := ValidateDescription(spec.Description); err != nil {
		return Exporter{}, err
	}
	hosts, err := specHosts(spec)
	if err != nil {
		return Exporter{}, err
	}
	if err := validateExpVolume(spec.SnapName, spec.CloneName); err != nil {
		return Exporter{}, err
	}
	nqn, err := nvmeof.ExpNQN(spec.DAName, spec.Name)
	if err != nil {
		return Exporter{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	var exp Exporter
	err = c.update(ctx, func(tx *store.Tx) error {
		da, err := txGet[DiskArray](tx, KeyDA(spec.DAName), daWhat(spec.DAName))
		if err != nil {
			return err
		}
		key := KeyExp(spec.DAName, spec.Name)
		old, found, err := txLookup[Exporter](tx, key)
		if err != nil {
			return err
		}
		if found {
			exp = old
			have, want := strings.Join(old.HostNQNs, " "), strings.Join(hosts, " ")
			if sameHosts(old.HostNQNs, hosts) {
				want = have
			}
			return sameSpec(expWhat(spec.DAName, spec.Name), field{"description", old.Description, spec.Description},
				field{"host_nqns", have, want},
				field{"snap_name", old.SnapName, spec.SnapName}, field{"clone_name", old.CloneName, spec.CloneName})
		}
		exp = Exporter{ID: nvmeof.NewID(), Name: spec.Name, DAName: da.Name, DAID: da.ID,
			Description: spec.Description, NQN: nqn.String(), InitiatorNQN: hosts[0], HostNQNs: hosts,
			SnapName: spec.SnapName, CloneName: spec.CloneName}
		if err := txBindVolume(tx, &exp); err != nil {
			return err
		}
		other, err := txOtherExporter(tx, da.Name, exp.Name, exp)
		if err != nil {
			return err
		}
		if other != nil {
			return fmt.Errorf("%w: exporter %q already exports %s, and a volume has one exporter (SPDK lets one subsystem claim it): "+
				"add the hosts to it with `vda exp modify --da-name %s --exp-name %s --add-host-nqn <nqn>`",
				ErrFailedPrecondition, other.Name, volumeWhat(exp), da.Name, other.Name)
		}
		for _, cntlr := range da.Cntlrs {
			exp.Ports = append(exp.Ports, ExpPort{ID: nvmeof.NewID(), CntlrIdx: cntlr.Idx})
		}
		da.ExpCount++
		if err := txPut(tx, KeyDA(da.Name), da); err != nil {
			return err
		}
		return txPut(tx, key, exp)
	})
	if err != nil {
		return Exporter{}, err
	}
	return exp, c.describePorts(ctx, &exp)
}

// describePorts fills in each port's CN and its listener from the DA, and
// the status of an exporter that is not served (SupersededExporters).
func (c *Cluster) describePorts(ctx context.Context, exp *Exporter) error {
	// Only the DA's spec is needed (epoch, controllers, exporter count):
	// its status, with a part per VD and controller, is not read.
	da, err := getSpecJSON[DiskArray](ctx, c, KeyDA(exp.DAName), daWhat(exp.DAName))
	if errors.Is(err, ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return err
	}
	exp.Status = exp.Status.AtEpoch(da.Epoch)
	if da.ExpCount > 1 {
		sup, err := c.supersededIn(ctx, da.Name)
		if err != nil {
			return err
		}
		markSuperseded(exp, sup)
	}
	listeners := map[string]nvmeof.TransportID{}
	for i := range exp.Ports {
		p := &exp.Ports[i]
		for _, cntlr := range da.Cntlrs {
			if cntlr.Idx != p.CntlrIdx {
				continue
			}
			l, ok := listeners[cntlr.CNName]
			if !ok {
				// The listener is in the spec: the node's status is not read.
				l, err = c.cnListener(ctx, cntlr.CNName)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				listeners[cntlr.CNName] = l
			}
			p.CNName, p.CNListener = cntlr.CNName, l
		}
	}
	return nil
}

// supersededIn reads the exporters of DA da and returns those that are
// not served (see SupersededExporters).
func (c *Cluster) supersededIn(ctx context.Context, da string) (map[string]*Exporter, error) {
	res, err := c.s.List(ctx, KeyExps(da), store.ListOptions{})
	if err != nil {
		return nil, err
	}
	recs := make([]ExporterRecord, 0, len(res.KVs))
	for _, kv := range res.KVs {
		var e Exporter
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, fmt.Errorf("vda: decode %s: %w", kv.Key, err)
		}
		recs = append(recs, ExporterRecord{Exporter: &e, CreateRevision: kv.CreateRevision})
	}
	return SupersededExporters(recs), nil
}

// markSuperseded reports exp as failed if it is not served: whatever its
// ports last reported, no controller exports it.
func markSuperseded(exp *Exporter, sup map[string]*Exporter) {
	if by, ok := sup[exp.ID]; ok {
		exp.Status = Status{Health: HealthFailed, ErrorMsg: SupersededMessage(by), UpdatedAt: exp.Status.UpdatedAt}
	}
}

// GetExporter returns an exporter with its status and, per controller,
// the CN and listener an initiator connects to.
func (c *Cluster) GetExporter(ctx context.Context, da, name string) (Exporter, error) {
	if err := validateExpNames(da, name); err != nil {
		return Exporter{}, err
	}
	exp, err := getJSON(ctx, c, KeyExp(da, name), expWhat(da, name), expStatus)
	if err != nil {
		return Exporter{}, err
	}
	return exp, c.describePorts(ctx, &exp)
}

// ListExporters returns one page of the exporters of DA da, or of every
// DA if da is "".
func (c *Cluster) ListExporters(ctx context.Context, da string, page Page) ([]Exporter, string, error) {
	exps, next, err := listUnder(ctx, c, children{PrefixExp, nvmeof.ResourceDA, nvmeof.ResourceExporter, KeyDA, daWhat, KeyExps},
		da, page, expStatus)
	if err != nil {
		return nil, "", err
	}
	sups := map[string]map[string]*Exporter{} // by DA
	for i := range exps {
		sup, ok := sups[exps[i].DAName]
		if !ok {
			if sup, err = c.supersededIn(ctx, exps[i].DAName); err != nil {
				return nil, "", err
			}
			sups[exps[i].DAName] = sup
		}
		markSuperseded(&exps[i], sup)
	}
	return exps, next, nil
}

// modifyHosts applies u's host changes to hosts (normalised already).
func modifyHosts(what string, hosts []string, first *string, add, remove []string) ([]string, error) {
	out := slices.Clone(hosts)
	if first != nil {
		out = append([]string{*first}, slices.DeleteFunc(out[min(1, len(out)):], func(h string) bool { return h == *first })...)
	}
	out = slices.DeleteFunc(out, func(h string) bool { return slices.Contains(remove, h) })
	for _, h := range add {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	switch {
	case len(out) == 0:
		return nil, fmt.Errorf("%w: removing every host of %s: an exporter admits at least one host (delete the exporter instead)",
			ErrFailedPrecondition, what)
	case len(out) > MaxExporterHosts:
		return nil, fmt.Errorf("%w: %s would admit %d hosts, at most %d", ErrFailedPrecondition, what, len(out), MaxExporterHosts)
	}
	return out, nil
}

// parseExpUpdate validates u and returns its host changes, normalised.
func parseExpUpdate(u ExporterUpdate) (first *string, add, remove []string, err error) {
	if u.Description != nil {
		if err := ValidateDescription(*u.Description); err != nil {
			return nil, nil, nil, err
		}
	}
	if u.InitiatorNQN != nil {
		host, err := ParseInitiatorNQN(*u.InitiatorNQN)
		if err != nil {
			return nil, nil, nil, err
		}
		first = &host
	}
	if add, err = ParseHostNQNs("add_host_nqns", u.AddHostNQNs); err != nil {
		return nil, nil, nil, err
	}
	if remove, err = ParseHostNQNs("remove_host_nqns", u.RemoveHostNQNs); err != nil {
		return nil, nil, nil, err
	}
	for _, h := range remove {
		if slices.Contains(add, h) || (first != nil && *first == h) {
			return nil, nil, nil, fmt.Errorf("%w: host NQN %q is both added and removed", ErrInvalidArgument, h)
		}
	}
	return first, add, remove, nil
}

// ModifyExporter changes an exporter's description or hosts (see
// ExporterUpdate). A removed host is disconnected on every controller.
func (c *Cluster) ModifyExporter(ctx context.Context, da, name string, u ExporterUpdate) (Exporter, error) {
	if err := validateExpNames(da, name); err != nil {
		return Exporter{}, err
	}
	first, add, remove, err := parseExpUpdate(u)
	if err != nil {
		return Exporter{}, err
	}
	var exp Exporter
	err = c.update(ctx, func(tx *store.Tx) error {
		var err error
		if exp, err = txGet[Exporter](tx, KeyExp(da, name), expWhat(da, name)); err != nil {
			return err
		}
		hosts, err := modifyHosts(expWhat(da, name), exp.HostNQNs, first, add, remove)
		if err != nil {
			return err
		}
		changed := !slices.Equal(hosts, exp.HostNQNs)
		exp.HostNQNs, exp.InitiatorNQN = hosts, hosts[0]
		if u.Description != nil && *u.Description != exp.Description {
			exp.Description, changed = *u.Description, true
		}
		if !changed {
			return nil // nothing to write: the monitor has nothing to push
		}
		return txPut(tx, KeyExp(da, name), exp)
	})
	if err != nil {
		return Exporter{}, err
	}
	if exp.Status, err = c.readStatus(ctx, KeyExp(da, name)); err != nil {
		return Exporter{}, err
	}
	return exp, c.describePorts(ctx, &exp)
}

// DeleteExporter removes an exporter.
func (c *Cluster) DeleteExporter(ctx context.Context, da, name string) error {
	if err := validateExpNames(da, name); err != nil {
		return err
	}
	return c.update(ctx, func(tx *store.Tx) error {
		exp, err := txGet[Exporter](tx, KeyExp(da, name), expWhat(da, name))
		if err != nil {
			return err
		}
		if err := txUnbindVolume(tx, exp); err != nil {
			return err
		}
		arr, err := txGet[DiskArray](tx, KeyDA(da), daWhat(da))
		if err != nil {
			return err
		}
		arr.ExpCount = max(0, arr.ExpCount-1)
		txDelete(tx, KeyExp(da, name))
		return txPut(tx, KeyDA(da), arr)
	})
}

// Summary counts the cluster's objects and PD capacity.
func (c *Cluster) Summary(ctx context.Context) (ClusterSummary, error) {
	var s ClusterSummary
	cands, _, err := c.candidates(ctx)
	if err != nil {
		return s, err
	}
	s.DNCount, s.PDCount, s.CNCount = len(cands.DNs), len(cands.PDs), len(cands.CNs)
	for _, pd := range cands.PDs {
		s.TotalBytes += pd.CapacityBytes()
		s.FreeBytes += pd.FreeBytes()
	}
	for _, p := range []struct {
		prefix string
		n      *int
	}{{PrefixDA, &s.DACount}, {PrefixExp, &s.ExpCount}} {
		res, err := c.s.List(ctx, p.prefix, store.ListOptions{})
		if err != nil {
			return s, err
		}
		*p.n = len(res.KVs)
	}
	return s, nil
}
