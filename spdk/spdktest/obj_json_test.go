package spdktest

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// refObj is obj as it was encoded before appendJSON: every key and value
// through marshal, each nested object on its own.
type refObj []kv

func (o refObj) MarshalJSON() ([]byte, error) {
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
		v, err := marshal(toRef(e.v))
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

func toRef(v any) any {
	switch v := v.(type) {
	case obj:
		if v == nil {
			return refObj(nil)
		}
		r := make(refObj, len(v))
		for i, e := range v {
			r[i] = kv{e.k, toRef(e.v)}
		}
		return r
	case []obj:
		if v == nil {
			return []refObj(nil)
		}
		r := make([]refObj, len(v))
		for i, o := range v {
			r[i] = toRef(o).(refObj)
		}
		return r
	}
	return v
}

// TestObjJSONAsEncodingJSON checks that obj's encoder writes the bytes
// encoding/json wrote through MarshalJSON, for every kind of value the
// fake's answers hold and the strings encoding/json escapes.
func TestObjJSONAsEncodingJSON(t *testing.T) {
	type named string
	inner := obj{{"name", "Nvme0n1"}, {"num_blocks", uint64(math.MaxUint64)}, {"claimed", true}}
	o := obj{
		{"plain", "nqn.2016-06.io.spdk:cnode1"},
		{"escaped", "a\"b\\c\nd\te\x01<&>\u2028\u2029é\xff"},
		{"empty", ""},
		{"neg", -32602}, {"i32", int32(-7)}, {"i64", int64(math.MinInt64)}, {"u32", uint32(math.MaxUint32)},
		{"u16", uint16(math.MaxUint16)}, {"trid", ctrlrTrid{TrType: "TCP", AdrFam: "IPv4", TrAddr: "127.0.0.1", TrSvcID: "4420", SubNQN: "nqn.x"}},
		{"trid, empty", ctrlrTrid{}}, {"trid, pcie", ctrlrTrid{TrType: "PCIe", TrAddr: "0000:00:04.0"}},
		{"trid, escaped", ctrlrTrid{TrType: "a\"b", AdrFam: "<&>", TrSvcID: "\xff", SubNQN: "é\u2028"}},
		{"float", 0.1}, {"big float", 1e21},
		{"nil", nil}, {"nil obj", obj(nil)}, {"nil list", []obj(nil)}, {"empty obj", obj{}}, {"empty list", []obj{}},
		{"list", []obj{inner, {{"nested", inner}}}},
		{"strings", []string{"a", "<b>"}}, {"any", []any{1, "x", inner}},
		{"struct", struct {
			A string `json:"a"`
			B obj    `json:"b"`
		}{"x", inner}},
		{"map", map[string]any{"k": inner}},
		{"named", named("n\"amed")},
		{"key \"quoted\" <>", false},
	}
	got, err := marshal(o)
	require.NoError(t, err)
	want, err := marshal(toRef(o))
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	require.True(t, json.Valid(got))
	reply, err := encodeReply(json.RawMessage("1"), []obj{o, inner}, nil)
	require.NoError(t, err)
	wantReply, err := encodeReply(json.RawMessage("1"), []refObj{toRef(o).(refObj), toRef(inner).(refObj)}, nil)
	require.NoError(t, err)
	require.Equal(t, string(wantReply), string(reply))
}
