package spdk

import "math"

// fastResult is a result that decodes the usual shape of its method's reply itself, in one
// pass; decodeFast reports false for anything else, which encoding/json then decodes. Call
// uses it for results that are asked for often: nvmf_subsystem_get_listeners is how an
// exporter's ANA state is read (the agent's rechecks, anyone waiting for a path to become
// optimized), and encoding/json's validation pass and reflection were most of its cost.
type fastResult interface {
	decodeFast(b []byte) bool
}

// listenerList is the result of nvmf_subsystem_get_listeners.
type listenerList []Listener

func (l *listenerList) decodeFast(b []byte) bool {
	ls, ok := decodeListeners(b)
	if ok {
		*l = ls
	}
	return ok
}

// decodeListeners decodes b as json.Unmarshal would into []Listener, when b has the shape
// SPDK v24.01 writes: an array of objects with the members address (trtype, adrfam, traddr,
// trsvcid, subnqn), ana_state and ana_states (ana_group, ana_state), each at most once,
// strings of printable ASCII without escapes, groups as plain integers. ok is false for
// anything else (unknown or differently cased names, escapes, nulls, other numbers, bad
// JSON): encoding/json decides those.
func decodeListeners(b []byte) ([]Listener, bool) {
	p := fastParser{b: b}
	if !p.open('[') {
		return nil, false
	}
	out := []Listener{} // encoding/json makes [] an empty slice, not nil
	if p.close(']') {
		return out, p.end()
	}
	for {
		var l Listener
		if !p.listener(&l) {
			return nil, false
		}
		out = append(out, l)
		switch {
		case p.open(','):
		case p.close(']'):
			return out, p.end()
		default:
			return nil, false
		}
	}
}

// fastParser reads the restricted JSON of decodeListeners; every method skips the white
// space before what it reads.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) open(c byte) bool {
	p.i = skipSpace(p.b, p.i)
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *fastParser) close(c byte) bool { return p.open(c) }

func (p *fastParser) end() bool { return skipSpace(p.b, p.i) == len(p.b) }

// str reads a string of printable ASCII without escapes.
func (p *fastParser) str() (string, bool) {
	if !p.open('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := intern(p.b[start:p.i])
			p.i++
			return s, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
		p.i++
	}
	return "", false
}

// intern returns the strings every listener repeats without allocating them.
func intern(b []byte) string {
	switch string(b) {
	case "TCP":
		return "TCP"
	case "IPv4":
		return "IPv4"
	case "IPv6":
		return "IPv6"
	case ANAOptimized:
		return ANAOptimized
	case ANANonOptimized:
		return ANANonOptimized
	case ANAInaccessible:
		return ANAInaccessible
	}
	return string(b)
}

// uint32 reads a non-negative integer without sign, fraction, exponent or leading zeros.
func (p *fastParser) uint32() (uint32, bool) {
	p.i = skipSpace(p.b, p.i)
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' && v <= math.MaxUint32 {
		v = v*10 + uint64(p.b[p.i]-'0')
		p.i++
	}
	n := p.i - start
	if n == 0 || v > math.MaxUint32 || (n > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		if c := p.b[p.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return uint32(v), true
}

// member reads the next member's name of an object (after '{' or ',') and its colon, and
// returns its index in names; each name may come once (seen records them).
func (p *fastParser) member(names []string, seen *uint) (int, bool) {
	p.i = skipSpace(p.b, p.i)
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return 0, false
	}
	end := p.i + 1
	for end < len(p.b) && p.b[end] != '"' && p.b[end] != '\\' {
		end++
	}
	if end >= len(p.b) || p.b[end] != '"' {
		return 0, false
	}
	name := p.b[p.i+1 : end]
	for k, n := range names {
		if string(name) == n && *seen&(1<<k) == 0 {
			*seen |= 1 << k
			p.i = end + 1
			return k, p.open(':')
		}
	}
	return 0, false
}

// more reads what follows an object's member: true after ',', false after '}'.
func (p *fastParser) more() (more, ok bool) {
	switch {
	case p.open(','):
		return true, true
	case p.close('}'):
		return false, true
	}
	return false, false
}

var (
	listenerNames = []string{"address", "ana_state", "ana_states"}
	addressNames  = []string{"trtype", "adrfam", "traddr", "trsvcid", "subnqn"}
	anaStateNames = []string{"ana_group", "ana_state"}
)

// object reads an object whose members are among names, each at most
// once; value reads the value of member names[k].
func (p *fastParser) object(names []string, value func(k int) bool) bool {
	if !p.open('{') {
		return false
	}
	if p.close('}') {
		return true
	}
	var seen uint
	for {
		k, ok := p.member(names, &seen)
		if !ok || !value(k) {
			return false
		}
		if more, ok := p.more(); !ok || !more {
			return ok
		}
	}
}

func (p *fastParser) listener(l *Listener) bool {
	return p.object(listenerNames, func(k int) (ok bool) {
		switch k {
		case 0:
			ok = p.address(&l.Address)
		case 1:
			l.ANAState, ok = p.str()
		default:
			ok = p.anaStates(&l.ANAStates)
		}
		return ok
	})
}

func (p *fastParser) address(a *TransportID) bool {
	return p.object(addressNames, func(k int) (ok bool) {
		dst := [...]*string{&a.TRType, &a.AdrFam, &a.TRAddr, &a.TRSvcID, &a.SubNQN}[k]
		*dst, ok = p.str()
		return ok
	})
}

func (p *fastParser) anaStates(out *[]ListenerANAState) bool {
	if !p.open('[') {
		return false
	}
	*out = []ListenerANAState{}
	if p.close(']') {
		return true
	}
	for {
		var s ListenerANAState
		if !p.anaState(&s) {
			return false
		}
		*out = append(*out, s)
		switch {
		case p.open(','):
		case p.close(']'):
			return true
		default:
			return false
		}
	}
}

func (p *fastParser) anaState(s *ListenerANAState) bool {
	return p.object(anaStateNames, func(k int) (ok bool) {
		if k == 0 {
			s.ANAGroup, ok = p.uint32()
		} else {
			s.ANAState, ok = p.str()
		}
		return ok
	})
}
