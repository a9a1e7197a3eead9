package spdktest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

var memberSeeds = []string{
	`{"jsonrpc":"2.0","method":"spdk_get_version","id":1}`,
	` { "method" : "bdev_get_bdevs" , "params" : { "name" : "a\"}b" , "timeout_ms" : 5 } , "id" : "x" } `,
	`{"method":"m","method":"n","id":[1],"params":null}`,
	`{"method":"m","params":{"name":null,"name":"x"},"id":1}`,
	`{"method":"m","params":{"nqn":"q","listen_address":{"trtype":"tcp","traddr":"1.2.3.4","Trsvcid":"1"}},"id":2}`,
	`{"method":"m","params":{"nqn":"q","listen_address":{"trtype":"tcp","traddr":"1.2.3.4","trsvcid":"1"}},"id":2}`,
	`{"method":"m\u0041","jsonrpc":"2.0","id":-3}`, `{"jsonrpc":"2.1","method":"m"}`, `{"jsonrpc":2,"method":"m"}`,
	`{"method":"m","params":"str"}`, `{"method":"m","params":[1,{"a":"]"}]}`, `{"method":"m","x":1}`, `{}`, `{"id":1}`,
	`{"method":null}`, `{"method":7}`, `{"method":"m","id":true}`, `{"method":"m","params":{"na\u006de":"x"}}`,
	`{"method":"m","params":{"name":"x","block_size":512,"num_blocks":8,"uuid":"u"}}`, `{"méthod":"m"}`,
}

// The one-pass envelope reader answers as the map-based one for every
// request it reads (it leaves the others to it).
func FuzzRequestFastAsMap(f *testing.F) {
	for _, s := range memberSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		raw = bytes.TrimSpace(raw)
		if !json.Valid(raw) || len(raw) == 0 || raw[0] != '{' {
			return
		}
		req, id, perr, ok := parseRequestFast(raw)
		if !ok {
			return
		}
		wreq, wid, wperr := parseRequestMap(raw)
		require.Equal(t, wperr, perr, "%s", raw)
		require.Equal(t, string(wid), string(id), "%s", raw)
		if wreq == nil {
			require.Nil(t, req)
			return
		}
		require.Equal(t, wreq.method, req.method, "%s", raw)
		require.Equal(t, string(wreq.params), string(req.params), "%s", raw)
		require.Equal(t, string(wreq.id), string(req.id), "%s", raw)
	})
}

type strictInner struct {
	TRType string `json:"trtype"`
	TRAddr string `json:"traddr"`
}

type strictOuter struct {
	Name string       `json:"name"`
	N    *int         `json:"n"`
	In   *strictInner `json:"listen_address"`
	L    []string     `json:"l"`
}

// decodeParamsMap is decodeParams as it was before strictMembers: the
// reference the fast path must agree with.
func decodeParamsMap(params json.RawMessage, v any, required ...string) *Error {
	if !strictObjectHas(params, reflect.TypeOf(v).Elem(), required) {
		return errDecode
	}
	return decodeChecked(params, v)
}

// decodeParams refuses and decodes what it did before strictMembers, for
// any bytes; and where strictMembers is sure about valid JSON, it agrees
// with strictObject and the required-key check.
func FuzzStrictMembersAsObject(f *testing.F) {
	for _, s := range []string{`{"name":"a","n":1}`, `{"name":"a","listen_address":{"trtype":"t","traddr":"a"}}`,
		`{"name":"a","listen_address":{"trtype":"t","x":"a"}}`, `{"name":null}`, `{"n":1}`, `{"name":"a","name":null}`,
		`{"name":null,"name":"a"}`, `{"Name":"a"}`, `{"name":"a","l":["x",null]}`, `{"name":"a","listen_address":"s"}`,
		`{"name":"a"} x`, `[]`, `{"name":"a","listen_address":{"trtype":null}}`, `{"na\u006de":"a"}`} {
		f.Add([]byte(s))
	}
	typ := reflect.TypeOf(strictOuter{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got, want strictOuter
		gotErr, wantErr := decodeParams(raw, &got, "name"), decodeParamsMap(raw, &want, "name")
		require.Equal(t, wantErr, gotErr, "%s", raw)
		require.Equal(t, want, got, "%s", raw)
		refused, sure := strictMembers(raw, typ, []string{"name"})
		if !sure || !json.Valid(raw) {
			return
		}
		m, ok := strictObject(raw, typ)
		_, named := m["name"]
		require.Equal(t, !(ok && named), refused, "%s", raw)
	})
}

// The fast paths are taken for the requests the agents send, so they are
// what the tests above compare.
func TestFastPathsTakeAgentRequests(t *testing.T) {
	raw := []byte(`{"jsonrpc":"2.0","method":"nvmf_subsystem_add_host","id":42,"params":{"nqn":"nqn.2016-06.io.vda:x","host":"nqn.h"}}`)
	req, id, perr, ok := parseRequestFast(raw)
	require.True(t, ok)
	require.Nil(t, perr)
	require.Equal(t, "42", string(id))
	require.Equal(t, "nvmf_subsystem_add_host", req.method)
	refused, sure := strictMembers(req.params, reflect.TypeOf(struct {
		NQN  string `json:"nqn"`
		Host string `json:"host"`
	}{}), []string{"nqn", "host"})
	require.True(t, sure)
	require.False(t, refused)
}

// marshal's direct encodings give encoding/json's bytes.
func TestMarshalFastAsEncodingJSON(t *testing.T) {
	for _, v := range []any{true, false, "x", "a<b>&", "é", "q\"", []string{"a", "b"}, []string{}, []string(nil),
		[]string{"a\n"}} {
		got, err := marshal(v)
		require.NoError(t, err)
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		require.NoError(t, enc.Encode(v))
		require.Equal(t, string(bytes.TrimRight(b.Bytes(), "\n")), string(got), "%#v", v)
	}
	for _, id := range []string{"1", "42", `"x"`, "-1", " 7"} {
		got, err := encodeReply(json.RawMessage(id), true, nil)
		require.NoError(t, err)
		var c bytes.Buffer
		require.NoError(t, json.Compact(&c, []byte(id)))
		require.Equal(t, `{"jsonrpc":"2.0","id":`+c.String()+`,"result":true}`+"\n", string(got))
	}
}
