package spdktest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// decodeParams decodes params into v (a pointer to a struct with json tags)
// as strictly as spdk_json_decode_object: params must be an object, keys are
// matched case-sensitively, unknown keys, null values, wrong types and
// missing required keys all fail with -32603 "spdk_json_decode_object
// failed".
func decodeParams(params json.RawMessage, v any, required ...string) *Error {
	if params == nil {
		if len(required) > 0 {
			return errDecode
		}
		return nil
	}
	t := reflect.TypeOf(v).Elem()
	if refused, sure := strictMembers(params, t, required); refused || !sure && !strictObjectHas(params, t, required) {
		return errDecode
	}
	return decodeChecked(params, v)
}

// strictObjectHas is the check strictMembers makes in one pass, by maps:
// params is a strictObject of t with every required key.
func strictObjectHas(params json.RawMessage, t reflect.Type, required []string) bool {
	m, ok := strictObject(params, t)
	if !ok {
		return false
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

// decodeChecked decodes params, already checked, into v.
func decodeChecked(params json.RawMessage, v any) *Error {
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errDecode
	}
	return nil
}

// strictObject reports whether raw is an object whose keys are all exact
// json tags of t (recursively for nested struct fields) with no null value,
// and returns its members.
func strictObject(raw json.RawMessage, t reflect.Type) (map[string]json.RawMessage, bool) {
	if firstByte(raw) != '{' {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	fields := jsonFields(t)
	for k, v := range m {
		ft, ok := fields[k]
		if !ok || firstByte(v) == 'n' {
			return nil, false
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			if _, ok := strictObject(v, ft); !ok {
				return nil, false
			}
		}
	}
	return m, true
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			out[name] = f.Type
		}
	}
	fieldCache.Store(t, out)
	return out
}

// noParams is the decoder for methods that take no parameters: SPDK answers
// -32602 when any are given.
func noParams(method string, params json.RawMessage) *Error {
	if params != nil {
		return rpcErr(codeInvalidParams, method+" requires no parameters")
	}
	return nil
}

// kv is one member of an ordered JSON object.
type kv struct {
	k string
	v any
}

// obj is a JSON object that keeps its key order when marshalled, for the
// result shapes whose keys depend on the object (driver_specific, ...).
type obj []kv

func (o obj) MarshalJSON() ([]byte, error) {
	return o.appendJSON(make([]byte, 0, 64*len(o)))
}

// appendJSON appends o as encoding/json (HTML not escaped, as marshal)
// would write it. The common values (nested objects, their lists, plain
// strings, integers, booleans) are written here directly: through
// MarshalJSON each nested object was encoded on its own and then checked
// again by every enclosing level, which made a listing of a thousand
// bdevs cost more than answering it. Anything else goes through marshal,
// so the bytes on the wire are the same.
func (o obj) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, e := range o {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendValue(b, e.k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = appendValue(b, e.v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendValue appends v as marshal would encode it.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case obj: // nil too: encoding/json calls MarshalJSON on a nil slice
		return v.appendJSON(b)
	case []obj:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, o := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = o.appendJSON(b); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case string:
		if plainString(v) {
			return appendPlain(b, v), nil
		}
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), nil
	case jsonAppender:
		return v.appendJSON(b)
	}
	m, err := marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, m...), nil
}

// jsonAppender is a value that appends itself as encoding/json writes it
// (TestCtrlrTridAsEncodingJSON).
type jsonAppender interface {
	appendJSON(b []byte) ([]byte, error)
}

// plainString reports whether encoding/json writes s between quotes as it
// is: printable ASCII without a quote or a backslash.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
