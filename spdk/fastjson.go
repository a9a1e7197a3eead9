package spdk

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// fastResult is a result that decodes the usual shape of its method's reply itself, in one
// pass; decodeFast reports false for anything else, and encoding/json then decodes the reply
// into target. Call uses it for results that are asked for often or are large:
// nvmf_subsystem_get_listeners (an exporter's ANA state) and the listings every node sync
// reads (bdev_get_bdevs, nvmf_get_subsystems, bdev_nvme_get_controllers,
// bdev_raid_get_bdevs, bdev_lvol_get_lvols, bdev_lvol_get_lvstores). encoding/json's validation pass and reflection were most of their
// cost.
type fastResult interface {
	decodeFast(b []byte) bool
	target() any
}

// fastList is the result []T of a listing whose elements elem reads.
type fastList[T any] struct {
	out  *[]T
	elem func(*fastParser, *T) bool
}

func (l fastList[T]) decodeFast(b []byte) bool {
	out, ok := decodeList(b, l.elem)
	if ok {
		*l.out = out
	}
	return ok
}

func (l fastList[T]) target() any { return l.out }

// decodeList decodes b as json.Unmarshal would into []T, in one pass, when b has the shape
// SPDK writes (see fastParser); ok is false for anything else, which encoding/json decides.
func decodeList[T any](b []byte, elem func(*fastParser, *T) bool) ([]T, bool) {
	p := fastParser{b: b}
	var out []T
	if !array(&p, &out, func(v *T) bool { return elem(&p, v) }) || !p.end() {
		return nil, false
	}
	return out, true
}

// decodeResult decodes a reply's result as json.Unmarshal does: in one pass when result is a
// fastResult that takes it or one of the small results most calls have (a name, a list of
// names, a namespace id, true), through encoding/json otherwise.
func decodeResult(b []byte, result any) error {
	if f, ok := result.(fastResult); ok {
		if f.decodeFast(b) {
			return nil
		}
		result = f.target()
	} else if decodeSmall(b, result) {
		return nil
	}
	return json.Unmarshal(b, result)
}

// decodeSmall decodes b into the small results it knows, when b is not null (which leaves
// a value as it is) and, for a slice, the slice is nil (encoding/json would reuse its array).
func decodeSmall(b []byte, result any) bool {
	p := fastParser{b: b}
	if p.null() {
		return false
	}
	switch r := result.(type) {
	case *string:
		if s, ok := p.rawString(); ok && p.end() {
			*r = string(s)
			return true
		}
	case *[]string:
		var v []string
		if *r == nil && p.strings(&v) && p.end() {
			*r = v
			return true
		}
	case *uint32:
		if v, ok := p.uint32(); ok && p.end() {
			*r = v
			return true
		}
	case *bool:
		if v, ok := p.boolean(); ok && p.end() {
			*r = v
			return true
		}
	}
	return false
}

// fastParser reads the JSON that SPDK writes, decoding into the package's types exactly as
// encoding/json would. Every method reports false for what it does not take (escapes in
// strings or names, numbers that are not plain integers in range, a member repeated with an
// object, array or null, a name that matches a field only when case is ignored, bad JSON):
// the caller then leaves the whole input to encoding/json, so the one-pass decode never has
// to reproduce encoding/json's errors or its rarer rules. Members a type does not have are
// skipped after checking that they are valid JSON, as encoding/json ignores them. Every
// method skips the white space before what it reads.
type fastParser struct {
	b []byte
	i int

	// recent are the last strings read, which SPDK often writes again close by (a bdev's
	// uuid as its alias or an lvol's name, a namespace's bdev name and uuid, an NVMe path's
	// subsystem NQN in its trid and controller data): a repeat shares the string.
	recent [4]string
	next   int

	// brief skips the members BdevGetBdevsBrief leaves out.
	brief bool
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
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

// rawString reads a string without escapes and returns its bytes; valid UTF-8 is taken as
// it is (encoding/json copies it), invalid UTF-8 is refused (encoding/json replaces it).
func (p *fastParser) rawString() ([]byte, bool) {
	if !p.open('"') {
		return nil, false
	}
	start, ascii := p.i, true
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, ascii || utf8.Valid(s)
		case c < 0x20 || c == '\\':
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		p.i++
	}
	return nil, false
}

// null reads null, if it comes next. Every value the parser reads with null allowed is the
// first of its member in a new struct (a repeat must be scalarNext), an element of a new slice
// or the value of a map entry, all of which encoding/json zeroes first; for all of them it
// takes null to leave the value as it is: zero, or nil.
func (p *fastParser) null() bool {
	p.i = skipSpace(p.b, p.i)
	if hasAt(p.b, p.i, "null") {
		p.i += 4
		return true
	}
	return false
}

// str reads a string value.
func (p *fastParser) str() (string, bool) {
	if p.null() {
		return "", true
	}
	b, ok := p.rawString()
	if !ok {
		return "", false
	}
	if s, ok := internTable[string(b)]; ok {
		return s, true
	}
	for _, s := range p.recent {
		if s == string(b) {
			return s, true
		}
	}
	s := string(b)
	p.recent[p.next] = s
	p.next = (p.next + 1) % len(p.recent)
	return s, true
}

// internTable holds the strings that every element of a listing repeats, so that decoding
// them does not allocate.
var internTable = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		ProductMalloc, ProductAIO, ProductNull, ProductNVMe, ProductRaid, ProductPassthru, ProductLvol,
		"TCP", "RDMA", "PCIe", "IPv4", "IPv6", ANAOptimized, ANANonOptimized, ANAInaccessible,
		"exclusive_write", "read_many_write_one", "read_many_write_none", "read_many_write_shared",
		"online", "configuring", "offline", "raid0", "raid1", "raid5f", "concat",
		"read", "write", "unmap", "write_zeroes", "flush", "reset", "compare", "compare_and_write",
		"abort", "nvme_admin", "nvme_io", "nvme_io_md", "zcopy", "get_zone_info", "zone_management",
		"zone_append", "seek_hole", "seek_data", "copy", "nvme_iov_md",
		"security", "format", "firmware", "ns_manage", "active_passive", "active_active",
		"1.2", "1.3", "1.4", "2.0", "24.01", "0x8086", "0x1b36", "SPDK_ACCEL_DMA_DEVICE",
		"NVMe", "Discovery", CtrlrEnabled, CtrlrResetting, CtrlrFailed, CtrlrReconnectIsDelayed,
		CtrlrDeleting, CtrlrDisabled, "SPDK bdev Controller", "VDA_CONTROLLER", "VDA_EXPORTER",
	} {
		m[s] = s
	}
	return m
}()

func intern(b []byte) string {
	if s, ok := internTable[string(b)]; ok {
		return s
	}
	return string(b)
}

// uint reads a non-negative integer without sign, fraction, exponent or leading zeros that
// fits in bits.
func (p *fastParser) uint(bits int) (uint64, bool) {
	if p.null() {
		return 0, true
	}
	p.i = skipSpace(p.b, p.i)
	start := p.i
	var v uint64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		if v > (math.MaxUint64-9)/10 {
			return 0, false // more digits than any field takes
		}
		v = v*10 + uint64(p.b[p.i]-'0')
		p.i++
	}
	n := p.i - start
	if n == 0 || (n > 1 && p.b[start] == '0') || (bits < 64 && v>>bits != 0) {
		return 0, false
	}
	if p.i < len(p.b) {
		if c := p.b[p.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	return v, true
}

func (p *fastParser) uint16() (uint16, bool) { v, ok := p.uint(16); return uint16(v), ok }
func (p *fastParser) uint32() (uint32, bool) { v, ok := p.uint(32); return uint32(v), ok }
func (p *fastParser) uint64() (uint64, bool) { return p.uint(64) }

// boolean reads true or false.
func (p *fastParser) boolean() (v, ok bool) {
	p.i = skipSpace(p.b, p.i)
	switch {
	case p.null():
		return false, true
	case hasAt(p.b, p.i, "true"):
		p.i += 4
		return true, true
	case hasAt(p.b, p.i, "false"):
		p.i += 5
		return false, true
	}
	return false, false
}

func hasAt(b []byte, i int, s string) bool { return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s }

// member reads the next member's name of an object (after '{' or ',') and its colon, and
// returns its index in names, or -1 for a name that is not there and that encoding/json
// would not match to one of them either; again reports a name seen before (seen records
// them).
func (p *fastParser) member(names []string, seen *uint64) (k int, again, ok bool) {
	name, ok := p.rawString()
	if !ok || !p.open(':') {
		return 0, false, false
	}
	for k, n := range names {
		if string(name) == n {
			again = *seen&(1<<k) != 0
			*seen |= 1 << k
			return k, again, true
		}
	}
	for _, c := range name {
		if c >= utf8.RuneSelf {
			return 0, false, false // Unicode case folding (K, ſ) may match a field
		}
	}
	for _, n := range names {
		if asciiEqualFold(name, n) {
			return 0, false, false // encoding/json matches names without regard to case
		}
	}
	return -1, false, true
}

// scalarNext reports whether the next value is a string, a number, true or false. A member
// repeated with such a value overwrites the first in encoding/json, as value(k) does for a
// scalar field and refuses for any other; a repeated object, array or null (which would keep
// a string but clear a slice) is encoding/json's to merge. SPDK v24.01 writes a raid's
// "uuid" twice in bdev_raid_get_bdevs.
func (p *fastParser) scalarNext() bool {
	p.i = skipSpace(p.b, p.i)
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"', c == '-', c == 't', c == 'f', '0' <= c && c <= '9':
		return true
	}
	return false
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// object reads an object; value reads the value of member names[k]. Other members are
// skipped (names has at most 64 entries).
func (p *fastParser) object(names []string, value func(k int) bool) bool {
	if p.null() {
		return true
	}
	return p.members(names, func(k int, again bool) bool {
		switch {
		case again && !p.scalarNext():
			return false
		case k < 0:
			return p.skip()
		default:
			return value(k)
		}
	})
}

// members reads an object's members: each reads the value of a member,
// names[k] (k < 0: another name; again: a name seen before).
func (p *fastParser) members(names []string, each func(k int, again bool) bool) bool {
	if !p.open('{') {
		return false
	}
	if p.close('}') {
		return true
	}
	var seen uint64
	for {
		k, again, ok := p.member(names, &seen)
		if !ok || !each(k, again) {
			return false
		}
		switch {
		case p.open(','):
		case p.close('}'):
			return true
		default:
			return false
		}
	}
}

// array reads an array into a new slice (empty, not nil, for []), each element with elem.
func array[T any](p *fastParser, out *[]T, elem func(*T) bool) bool {
	if p.null() {
		return true
	}
	s := []T{}
	if !p.elements(func() bool {
		var zero T
		s = append(s, zero)
		return elem(&s[len(s)-1])
	}) {
		return false
	}
	*out = s
	return true
}

// elements reads an array, each element with each.
func (p *fastParser) elements(each func() bool) bool {
	if !p.open('[') {
		return false
	}
	if p.close(']') {
		return true
	}
	for {
		if !each() {
			return false
		}
		switch {
		case p.open(','):
		case p.close(']'):
			return true
		default:
			return false
		}
	}
}

func (p *fastParser) strings(out *[]string) bool {
	return array(p, out, func(s *string) (ok bool) {
		*s, ok = p.str()
		return ok
	})
}

// stringMap reads an object of values into a new map, as encoding/json reads a map with
// string keys: a repeated key keeps its last value.
func stringMap[V any](p *fastParser, out *map[string]V, value func() (V, bool)) bool {
	if p.null() {
		return true
	}
	if !p.open('{') {
		return false
	}
	m := make(map[string]V, 16)
	if !p.close('}') {
		for {
			k, ok := p.rawString()
			if !ok || !p.open(':') {
				return false
			}
			v, ok := value()
			if !ok {
				return false
			}
			m[intern(k)] = v
			if p.close('}') {
				break
			}
			if !p.open(',') {
				return false
			}
		}
	}
	*out = m
	return true
}

// maxSkipDepth bounds the nesting of the members the parser skips; deeper values are left
// to encoding/json (whose own limit is 10,000).
const maxSkipDepth = 64

// skip checks and skips one JSON value.
func (p *fastParser) skip() bool { return p.skipValue(0) }

func (p *fastParser) skipValue(depth int) bool {
	p.i = skipSpace(p.b, p.i)
	if p.i >= len(p.b) || depth > maxSkipDepth {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.skipString()
	case c == '{':
		p.i++
		if p.close('}') {
			return true
		}
		for {
			if !p.skipString() || !p.open(':') || !p.skipValue(depth+1) {
				return false
			}
			switch {
			case p.open(','):
				p.i = skipSpace(p.b, p.i)
			case p.close('}'):
				return true
			default:
				return false
			}
		}
	case c == '[':
		return p.elements(func() bool { return p.skipValue(depth + 1) })
	case c == '-' || ('0' <= c && c <= '9'):
		return p.skipNumber()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if hasAt(p.b, p.i, lit) {
			p.i += len(lit)
			return true
		}
	}
	return false
}

// skipString skips a string at p.i, escapes included; any bytes but control characters
// may appear in it (encoding/json does not check UTF-8).
func (p *fastParser) skipString() bool {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return false
	}
	for p.i++; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			p.i++
			if p.i >= len(p.b) {
				return false
			}
			switch p.b[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for k := 1; k <= 4; k++ {
					if p.i+k >= len(p.b) || !isHex(p.b[p.i+k]) {
						return false
					}
				}
				p.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// skipNumber skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (p *fastParser) skipNumber() bool {
	b, i := p.b, p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	p.i = i
	return true
}

// uintBits is the size of uint, for map[string]uint.
const uintBits = strconv.IntSize
