package spdktest

import "reflect"

// member is one name/value pair of a JSON object, as objectMembers reads it.
type member struct {
	key []byte // the name without its quotes (never escaped: see objectMembers)
	val []byte // the value's bytes, without the white space around it
}

// objectMembers appends the members of the JSON object b to out, in order,
// in one pass. It exists so that the fake's request path (the envelope,
// then the params' strict check) need not decode every request into maps
// with encoding/json several times over (issue 18: 4-7 % of a failover's
// CPU). It answers ok only for what it reads exactly as encoding/json
// would: an object, with names of printable ASCII without escapes, and
// nothing but white space after it. Anything else (escaped or non-ASCII
// names, not an object, a broken structure) gives ok false, and the caller
// falls back to encoding/json, which decides. Values are only delimited
// (strings, nested containers, literals): b is valid JSON where the
// callers rely on that (serveConn checks every request), and the strict
// decode that follows checks the values anyway.
func objectMembers(b []byte, out []member) ([]member, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return out, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return out, skipWS(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return out, false
		}
		k := i + 1
		for k < len(b) && b[k] != '"' {
			if c := b[k]; c < 0x20 || c > 0x7e || c == '\\' {
				return out, false
			}
			k++
		}
		if k >= len(b) {
			return out, false
		}
		key := b[i+1 : k]
		i = skipWS(b, k+1)
		if i >= len(b) || b[i] != ':' {
			return out, false
		}
		i = skipWS(b, i+1)
		end, ok := valueEnd(b, i)
		if !ok {
			return out, false
		}
		out = append(out, member{key: key, val: b[i:end]})
		i = skipWS(b, end)
		if i >= len(b) {
			return out, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return out, skipWS(b, i+1) == len(b)
		default:
			return out, false
		}
	}
}

// valueEnd returns where the JSON value starting at b[i] ends.
func valueEnd(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			}
		}
		return len(b), false
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, ok := valueEnd(b, j)
				if !ok {
					return end, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return len(b), false
	}
	j := i
	for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
		j++
	}
	return j, j > i
}

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// lastOf reports whether ms[i] is the last member named as it is: where
// a name repeats, encoding/json keeps the last value (in a map, and in a
// struct field), so only that one is checked.
func lastOf(ms []member, i int) bool {
	for _, m := range ms[i+1:] {
		if string(m.key) == string(ms[i].key) {
			return false
		}
	}
	return true
}

// strictMembers is strictObject and decodeParams' required-key check in
// one pass over raw (objectMembers): refused is true when raw is refused,
// sure false when objectMembers cannot read raw exactly, and the caller
// must ask strictObject.
func strictMembers(raw []byte, t reflect.Type, required []string) (refused, sure bool) {
	var buf [16]member
	ms, ok := objectMembers(raw, buf[:0])
	if !ok {
		return false, false
	}
	fields := jsonFields(t)
	for i, m := range ms {
		if !lastOf(ms, i) {
			continue
		}
		ft, ok := fields[string(m.key)]
		if !ok || m.val[0] == 'n' {
			return true, true
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			if refused, sure := strictMembers(m.val, ft, nil); !sure || refused {
				return refused, sure
			}
		}
	}
	for _, k := range required {
		found := false
		for _, m := range ms {
			found = found || string(m.key) == k
		}
		if !found {
			return true, true
		}
	}
	return false, true
}

// knownKeys reports whether raw is an object whose every name is a json
// tag of t, as objectMembers reads it (false also when it cannot).
func knownKeys(raw []byte, t reflect.Type) bool {
	var buf [16]member
	ms, ok := objectMembers(raw, buf[:0])
	if !ok {
		return false
	}
	fields := jsonFields(t)
	for _, m := range ms {
		if _, ok := fields[string(m.key)]; !ok {
			return false
		}
	}
	return true
}
