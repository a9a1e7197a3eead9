package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/store"
)

// ErrMalformed is wrapped by the Problems of objects the planner cannot use.
var ErrMalformed = errors.New("monitor: malformed object")

// Object is one decoded spec with the revision it was read at.
type Object[T any] struct {
	Key         string
	ModRevision int64
	Spec        T
	// CreateRevision is the revision that created the key: of the
	// exporters of one volume, the oldest is served (vda.SupersededExporters).
	CreateRevision int64
}

// Problem is a stored object the planner could not use. Problems are
// reported (logged) and make the planner hold the nodes the object may
// concern, never fatal.
type Problem struct {
	Key string
	Err error
}

func (p Problem) Error() string { return p.Key + ": " + p.Err.Error() }

// Snapshot is the whole cluster as read at one store revision: every spec
// under vda.Prefix, decoded, and every status.
type Snapshot struct {
	Revision int64
	DNs      map[string]*Object[vda.DiskNode]       // by name
	PDs      map[string]*Object[vda.PhysicalDisk]   // by key
	CNs      map[string]*Object[vda.ControllerNode] // by name
	DAs      map[string]*Object[vda.DiskArray]      // by name
	Exps     map[string]*Object[vda.Exporter]       // by key
	Snaps    map[string]*Object[vda.Snapshot]       // by key
	Clones   map[string]*Object[vda.Clone]          // by key
	Statuses map[string]vda.Status                  // by spec key
	// Bindings are the nodes' bindings to their agents, by node ID.
	Bindings map[string]vda.Binding
	Problems []Problem

	// hold names the nodes that must not be pushed, and why.
	hold holds
	// malformed is the set of keys that did not decode.
	malformed map[string]bool

	indexOnce sync.Once
	ix        *index
}

// holds names the nodes (by name) that must not be pushed, and why: a push
// deletes what the state does not name, so a node that may hold a
// malformed object is left alone.
type holds struct {
	// all: an object whose nodes cannot be known is malformed.
	all   bool
	nodes map[string]error
}

func (h *holds) clone() holds {
	n := holds{all: h.all, nodes: make(map[string]error, len(h.nodes))}
	for k, v := range h.nodes {
		n.nodes[k] = v
	}
	return n
}

func (h *holds) node(name string, why error) {
	if _, ok := h.nodes[name]; !ok {
		h.nodes[name] = why
	}
}

// da holds every node the DA names.
func (h *holds) da(da vda.DiskArray, why error) {
	why = fmt.Errorf("disk array %q: %w", da.Name, why)
	for _, vd := range da.VDs {
		h.node(vd.DNName, why)
	}
	h.cns(da, why)
}

// cns holds the controller nodes of the DA.
func (h *holds) cns(da vda.DiskArray, why error) {
	for _, c := range da.Cntlrs {
		h.node(c.CNName, why)
	}
}

func (h *holds) reason(name string) error {
	if h.all {
		return fmt.Errorf("%w: a disk array that cannot be decoded may concern every node", ErrMalformed)
	}
	return h.nodes[name]
}

// LoadSnapshot reads every key under vda.Prefix at one revision. A
// Monitor does not: it keeps a SnapshotCache current from a watch.
func LoadSnapshot(ctx context.Context, s store.Store) (*Snapshot, error) {
	res, err := s.List(ctx, vda.Prefix, store.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("monitor: snapshot: %w", err)
	}
	return DecodeSnapshot(res.Revision, res.KVs), nil
}

// DecodeSnapshot decodes kvs, read at revision rev. Objects that do not
// decode or are inconsistent with their key are reported in Problems.
func DecodeSnapshot(rev int64, kvs []store.KV) *Snapshot {
	st := newState()
	for _, kv := range kvs {
		st.apply(store.Event{Type: store.EventPut, KV: kv})
	}
	st.rev = rev
	snap, _ := st.view()
	return snap
}

// apply is the one decode of a stored key, by its kind: it replaces what
// the state holds for ev's key with ev's value (nothing for a delete, or
// a Problem if it does not decode). The state equals DecodeSnapshot of
// every key after the same writes.
func (s *state) apply(ev store.Event) {
	kv := ev.KV
	kind, tail, _ := strings.Cut(strings.TrimPrefix(kv.Key, vda.Prefix), "/")
	delete(s.bad, kv.Key)
	var err error
	var hold *holds // what the key holds if it is malformed
	switch kind {
	case "dn":
		err = decodeInto(&s.dns, ev, tail, checkDN)
	case "cn":
		err = decodeInto(&s.cns, ev, tail, checkCN)
	case "da":
		err = decodeInto(&s.das, ev, tail, checkDA)
		if err != nil {
			hold = &holds{nodes: map[string]error{}}
			hold.daOf(kv.Value, err)
		}
	case "pd":
		err = decodeInto(&s.pds, ev, kv.Key, checkPD(tail))
		if err != nil {
			dn, _, _ := strings.Cut(tail, "/")
			hold = &holds{nodes: map[string]error{}}
			hold.node(dn, fmt.Errorf("physical disk %s: %w", kv.Key, err))
		}
	case "exp":
		err = decodeInto(&s.exps, ev, kv.Key, checkExp(tail))
	case "snap":
		err = decodeInto(&s.snaps, ev, kv.Key, checkSnap(tail))
	case "clone":
		err = decodeInto(&s.clones, ev, kv.Key, checkClone(tail))
	case "binding":
		if id, ok := strings.CutPrefix(tail, "node/"); ok {
			err = decodeValue(&s.bindings, ev, id, func(id string, b *vda.Binding) error {
				if b.NodeID != id {
					return fmt.Errorf("binding of node %s names node %s", id, b.NodeID)
				}
				return nil
			})
		}
	case "status":
		key := vda.Prefix + tail
		err = decodeValue(&s.statuses, ev, key, func(string, *vda.Status) error { return nil })
		if _, ok := s.statuses.m[key]; ok {
			s.statusRevs[key] = kv.ModRevision
		} else {
			delete(s.statusRevs, key)
		}
	}
	if err != nil {
		s.bad[kv.Key] = badKey{err: fmt.Errorf("%w: %w", ErrMalformed, err), hold: hold}
	}
	if kv.ModRevision > s.rev {
		s.rev = kv.ModRevision
	}
}

// decodeInto sets m[name] to ev's value, decoded, if check accepts it;
// otherwise (or for a delete) removes m[name].
func decodeInto[T any](m *cowMap[*Object[T]], ev store.Event, name string, check func(name string, v *T) error) error {
	var v T
	err := decode(ev, name, &v, check)
	if err != nil || ev.Type == store.EventDelete {
		m.delete(name)
		return err
	}
	m.set(name, &Object[T]{Key: ev.KV.Key, ModRevision: ev.KV.ModRevision, CreateRevision: ev.KV.CreateRevision, Spec: v})
	return nil
}

// decodeValue is decodeInto for maps of plain values.
func decodeValue[T any](m *cowMap[T], ev store.Event, name string, check func(name string, v *T) error) error {
	var v T
	err := decode(ev, name, &v, check)
	if err != nil || ev.Type == store.EventDelete {
		m.delete(name)
		return err
	}
	m.set(name, v)
	return nil
}

func decode[T any](ev store.Event, name string, v *T, check func(name string, v *T) error) error {
	if ev.Type == store.EventDelete {
		return nil
	}
	if err := json.Unmarshal(ev.KV.Value, v); err != nil {
		return err
	}
	return check(name, v)
}

// daOf holds the nodes an undecodable DA names, as far as they can be
// read; if not even that, every node.
func (h *holds) daOf(value []byte, why error) {
	var partial struct {
		Name string `json:"name"`
		VDs  []struct {
			DNName string `json:"dn_name"`
		} `json:"vds"`
		Cntlrs []struct {
			CNName string `json:"cn_name"`
		} `json:"cntlrs"`
	}
	if err := json.Unmarshal(value, &partial); err != nil {
		h.all = true
		return
	}
	why = fmt.Errorf("disk array %q: %w", partial.Name, why)
	for _, vd := range partial.VDs {
		h.node(vd.DNName, why)
	}
	for _, c := range partial.Cntlrs {
		h.node(c.CNName, why)
	}
}

func checkName(key, name string) error {
	if key != name {
		return fmt.Errorf("name %q does not match its key", name)
	}
	return nil
}

func checkID(what, id string) error {
	if err := nvmeof.ValidateID(id); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func checkDN(name string, dn *vda.DiskNode) error {
	return errors.Join(checkName(name, dn.Name), checkID("id", dn.ID), vda.ValidateNodeAddress(dn.Address))
}

func checkCN(name string, cn *vda.ControllerNode) error {
	return errors.Join(checkName(name, cn.Name), checkID("id", cn.ID), vda.ValidateNodeAddress(cn.Address))
}

func checkPD(tail string) func(string, *vda.PhysicalDisk) error {
	return func(_ string, pd *vda.PhysicalDisk) error {
		errs := []error{checkName(tail, pd.DNName+"/"+pd.Name), checkID("id", pd.ID), checkID("dn_id", pd.DNID)}
		switch c := pd.Conf; c.Type {
		case vda.PDMalloc:
			if c.SizeBytes == 0 {
				errs = append(errs, errors.New("malloc PD without a size"))
			}
		case vda.PDAio:
			if c.Filename == "" {
				errs = append(errs, errors.New("aio PD without a filename"))
			}
		case vda.PDNVMe:
			if c.TrAddr == "" {
				errs = append(errs, errors.New("nvme PD without a traddr"))
			}
		default:
			errs = append(errs, fmt.Errorf("unknown PD type %q", c.Type))
		}
		return errors.Join(errs...)
	}
}

func checkDA(name string, da *vda.DiskArray) error {
	errs := []error{checkName(name, da.Name), checkID("id", da.ID)}
	if da.Epoch < 1 {
		errs = append(errs, fmt.Errorf("epoch %d is not positive", da.Epoch))
	}
	if len(da.VDs) == 0 || len(da.Cntlrs) == 0 {
		errs = append(errs, errors.New("no VDs or no controllers"))
	}
	idx := map[int]bool{}
	for _, vd := range da.VDs {
		errs = append(errs, checkID("vd id", vd.ID), checkID("vd pd_id", vd.PDID), checkID("vd dn_id", vd.DNID))
		if idx[vd.Idx] || vd.Idx < 0 || vd.Idx >= len(da.VDs) {
			errs = append(errs, fmt.Errorf("vd index %d is repeated or out of range", vd.Idx))
		}
		idx[vd.Idx] = true
	}
	clear(idx)
	primaries := 0
	for _, c := range da.Cntlrs {
		errs = append(errs, checkID("cntlr id", c.ID), checkID("cntlr cn_id", c.CNID))
		if _, _, err := nvmeof.ControllerIDRange(c.Idx); err != nil || idx[c.Idx] {
			errs = append(errs, fmt.Errorf("controller index %d is repeated or out of range", c.Idx))
		}
		idx[c.Idx] = true
		if c.Primary {
			primaries++
		}
	}
	if p, ok := da.Primary(); !ok || !p.Primary || primaries != 1 {
		errs = append(errs, fmt.Errorf("primary_cntlr_id %q is not the one controller marked primary", da.PrimaryCntlrID))
	}
	return errors.Join(errs...)
}

func checkExp(tail string) func(string, *vda.Exporter) error {
	return func(_ string, exp *vda.Exporter) error {
		errs := []error{checkName(tail, exp.DAName+"/"+exp.Name), checkID("id", exp.ID), checkID("da_id", exp.DAID)}
		if _, err := nvmeof.ParseNQN(exp.NQN); err != nil {
			errs = append(errs, fmt.Errorf("nqn: %w", err))
		}
		if _, err := nvmeof.ParseHostNQN(exp.InitiatorNQN); err != nil {
			errs = append(errs, fmt.Errorf("initiator_nqn: %w", err))
		}
		for _, p := range exp.Ports {
			errs = append(errs, checkID("port id", p.ID))
		}
		return errors.Join(errs...)
	}
}

// boundAgent returns the agent ID node id is bound to ("" if none).
func (s *Snapshot) boundAgent(id string) string { return s.Bindings[id].AgentID }

// Status returns the stored status of the object at specKey.
func (s *Snapshot) Status(specKey string) vda.Status { return s.Statuses[specKey] }
