package spdktest

import (
	"bytes"
	"encoding/json"
	"reflect"
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
	m, ok := strictObject(params, reflect.TypeOf(v).Elem())
	if !ok {
		return errDecode
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return errDecode
		}
	}
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
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(e.k)
		if err != nil {
			return nil, err
		}
		v, err := marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
