package vda

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/vda-io/vda/store"
)

// decoder turns store changes into Events. It remembers, per object it
// follows, only what transitions need: the summary of its last status, a
// DA's epoch, primary and controllers, an exporter's port count. It
// belongs to one stream's goroutine.
type decoder struct {
	kinds  []EventKind // empty: all
	daName string

	das    map[string]daState       // by DA name
	ports  map[string]int           // exporter spec key -> ports
	health map[string]statusSummary // spec key -> its last status
}

type daState struct {
	id, primary string
	epoch       int64
	parts       int
	cntlrs      []Cntlr
}

type statusSummary struct {
	health         Health
	message        string
	healthy, parts int
	// applied and inflated: a grown or inflated volume (Status) is a
	// change a waiter must see, even when the health stays.
	applied  uint64
	inflated bool
}

func newDecoder(opt WatchOptions) *decoder {
	return &decoder{kinds: opt.Kinds, daName: opt.DAName, das: map[string]daState{},
		ports: map[string]int{}, health: map[string]statusSummary{}}
}

// objectKey is a spec key split into its kind and names.
type objectKey struct {
	kind         EventKind
	parent, name string
}

// parseKey splits a spec key ("/vda/pd/dn0/pd0"); ok is false for keys
// that are no object WatchEvents reports (bindings, listeners, monitors).
func parseKey(key string) (objectKey, bool) {
	parts := strings.Split(strings.TrimPrefix(key, Prefix), "/")
	k := EventKind(parts[0])
	switch {
	case !slices.Contains(EventKinds(), k):
		return objectKey{}, false
	case k == KindDN || k == KindCN || k == KindDA:
		if len(parts) != 2 || parts[1] == "" {
			return objectKey{}, false
		}
		return objectKey{kind: k, name: parts[1]}, true
	default:
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return objectKey{}, false
		}
		return objectKey{kind: k, parent: parts[1], name: parts[2]}, true
	}
}

// follows reports whether the stream reports on the object, or needs it to
// decode others (a DA's epoch and controllers, an exporter's ports).
func (d *decoder) follows(o objectKey, status bool) (follow, report bool) {
	if d.daName != "" {
		switch o.kind {
		case KindDA:
			if o.name != d.daName {
				return false, false
			}
		case KindExp, KindSnap, KindClone:
			if o.parent != d.daName {
				return false, false
			}
		default:
			return false, false
		}
	}
	report = len(d.kinds) == 0 || slices.Contains(d.kinds, o.kind)
	return report || (!status && (o.kind == KindDA || o.kind == KindExp)), report
}

// split tells a status key from a spec key and returns the spec key.
func split(key string) (specKey string, status bool) {
	if rest, ok := strings.CutPrefix(key, PrefixStatus); ok {
		return Prefix + rest, true
	}
	return key, false
}

// prime records an object's state as a watch from now starts.
func (d *decoder) prime(kv store.KV) {
	specKey, status := split(kv.Key)
	o, ok := parseKey(specKey)
	if !ok {
		return
	}
	if follow, _ := d.follows(o, status); !follow {
		return
	}
	if status {
		if sum, ok := d.summarize(o, specKey, kv.Value); ok {
			d.health[specKey] = sum
		}
		return
	}
	d.spec(o, specKey, kv.Value)
}

// decode returns the events of one store change (none, or one).
func (d *decoder) decode(ev store.Event) []Event {
	specKey, status := split(ev.KV.Key)
	o, ok := parseKey(specKey)
	if !ok {
		return nil
	}
	follow, report := d.follows(o, status)
	if !follow {
		return nil
	}
	out := Event{Revision: ev.KV.ModRevision, Kind: o.kind, Name: o.name, Parent: o.parent}
	switch {
	case status && ev.Type == store.EventDelete:
		return nil // the spec's delete reports the object gone
	case status:
		sum, ok := d.summarize(o, specKey, ev.KV.Value)
		prev, known := d.health[specKey]
		if !ok || (known && prev == sum) {
			return nil // a report that changes nothing a reader sees
		}
		d.health[specKey] = sum
		out.Type, out.Health, out.PrevHealth, out.Message = EventHealth, sum.health, prev.health, sum.message
		out.HealthyParts, out.Parts = sum.healthy, sum.parts
		out.AppliedSizeBytes, out.Inflated = sum.applied, sum.inflated
	case ev.Type == store.EventDelete:
		delete(d.das, o.name)
		delete(d.ports, specKey)
		delete(d.health, specKey)
		out.Type = EventDeleted
	default:
		out.Type = EventChanged
		if ev.KV.Version == 1 {
			out.Type = EventCreated
		}
		if mv, how := d.spec(o, specKey, ev.KV.Value); mv != nil {
			out.Type, out.Move = how, mv
		}
		out.Health = d.health[specKey].health
	}
	if !report {
		return nil
	}
	return []Event{out}
}

// spec records what a DA's or exporter's record says, and returns the
// DA's primary move if it moved.
func (d *decoder) spec(o objectKey, specKey string, value []byte) (*PrimaryMove, EventType) {
	switch o.kind {
	case KindDA:
		var da DiskArray
		if json.Unmarshal(value, &da) != nil {
			return nil, ""
		}
		prev, known := d.das[o.name]
		d.das[o.name] = daState{id: da.ID, primary: da.PrimaryCntlrID, epoch: da.Epoch,
			parts: len(da.VDs) + len(da.Cntlrs), cntlrs: da.Cntlrs}
		if !known || prev.id != da.ID || prev.primary == da.PrimaryCntlrID || prev.primary == "" {
			return nil, ""
		}
		from, _ := DiskArray{PrimaryCntlrID: prev.primary, Cntlrs: prev.cntlrs}.Primary()
		to, _ := da.Primary()
		how := EventFailover
		if da.SwitchoverEpoch == da.Epoch {
			how = EventSwitchover
		}
		return &PrimaryMove{FromCntlrIdx: from.Idx, FromCN: from.CNName, ToCntlrIdx: to.Idx, ToCN: to.CNName, Epoch: da.Epoch}, how
	case KindExp:
		var exp Exporter
		if json.Unmarshal(value, &exp) == nil {
			d.ports[specKey] = len(exp.Ports)
		}
	}
	return nil, ""
}

// summarize is what a reader of the object's status sees: its health (a
// DA's and an exporter's at the DA's epoch), message and healthy parts.
func (d *decoder) summarize(o objectKey, specKey string, value []byte) (statusSummary, bool) {
	var st Status
	if json.Unmarshal(value, &st) != nil {
		return statusSummary{}, false
	}
	parts := len(st.Parts)
	switch o.kind {
	case KindDA:
		if da, ok := d.das[o.name]; ok {
			st, parts = st.AtEpoch(da.epoch), max(parts, da.parts)
		}
	case KindExp:
		if da, ok := d.das[o.parent]; ok {
			st = st.AtEpoch(da.epoch)
		}
		if n, ok := d.ports[specKey]; ok {
			parts = max(parts, n)
		}
	}
	sum := statusSummary{health: st.Health, message: st.ErrorMsg, parts: parts, applied: st.AppliedSizeBytes, inflated: st.Inflated}
	for _, p := range st.Parts {
		if p.Health == HealthHealthy {
			sum.healthy++
		}
	}
	return sum, true
}
