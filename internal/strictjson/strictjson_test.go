package strictjson_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/strictjson"
)

type inner struct {
	A int `json:"a"`
}

type conf struct {
	Type   string            `json:"type"`
	Size   uint64            `json:"size,omitempty"`
	Count  int               `json:"count"`
	Ptr    *string           `json:"ptr"`
	Inner  inner             `json:"inner"`
	List   []int             `json:"list"`
	Labels map[string]string `json:"labels"`
	Skip   string            `json:"-"`
	NoTag  bool
}

func TestDecodeAccepts(t *testing.T) {
	var c conf
	require.NoError(t, strictjson.Decode([]byte(` {"type":"aio","size":4096,"count":-3,"ptr":"x","inner":{"a":1},
		"list":[1,2],"labels":{"k":"v","K":"w"},"NoTag":true} `+"\n"), &c))
	require.Equal(t, "aio", c.Type)
	require.EqualValues(t, 4096, c.Size)
	require.Equal(t, -3, c.Count)
	require.Equal(t, "x", *c.Ptr)
	require.Equal(t, 1, c.Inner.A)
	require.Equal(t, []int{1, 2}, c.List)
	require.True(t, c.NoTag)
	c = conf{}
	require.NoError(t, strictjson.Decode([]byte(`{"list":null,"labels":null}`), &c))
	require.Nil(t, c.Ptr)
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"type":"aio","bogus":1}`, `unknown key "bogus"`},
		{`{"Type":"aio"}`, `unknown key "Type" (keys are case-sensitive: "type")`},
		{`{"type":"a","type":"b"}`, `key "type" given twice`},
		{`{"type":"a","TYPE":"b"}`, `keys "type" and "TYPE" differ only in case`},
		{`{"inner":{"a":1,"a":2}}`, `key "inner.a" given twice`},
		{`{"labels":{"k":"v","k":"w"}}`, `key "labels.k" given twice`},
		{`{"type":"aio"} x`, `data after the JSON object`},
		{`{"type":"aio"}{}`, `data after the JSON object`},
		{`{"type":"aio"},`, `data after the JSON object`},
		{`{"type":1}`, `key "type" must be a string, not a number`},
		{`{"size":"4096"}`, `key "size" must be an unsigned integer (64 bits), not a string`},
		{`{"size":-1}`, `key "size": -1 is not an unsigned integer`},
		{`{"size":1.5}`, `key "size": 1.5 is not an unsigned integer`},
		{`{"count":1e3}`, `key "count": 1e3 is not an integer`},
		{`{"count":99999999999999999999}`, `is not an integer`},
		{`{"count":null}`, `key "count" is null`},
		{`{"ptr":null}`, `key "ptr" is null, want a string`},
		{`{"inner":[]}`, `key "inner" must be an object, not an array`},
		{`{"list":[1,"x"]}`, `key "list[1]" must be an integer`},
		{`{"Skip":"x"}`, `unknown key "Skip"`},
		{`[]`, `want a JSON object, got an array`},
		{`"x"`, `want a JSON object, got a string`},
		{``, `empty`},
		{`{"type":`, `malformed JSON`},
		{`{"type":"a"`, `malformed JSON`},
		{"{\"type\":\"\xff\"}", `not valid UTF-8`},
	} {
		var c conf
		err := strictjson.Decode([]byte(tc.in), &c)
		require.Error(t, err, tc.in)
		require.True(t, errors.Is(err, strictjson.ErrInvalid), tc.in)
		require.Contains(t, err.Error(), tc.want, tc.in)
	}
}

func TestDecodeDepthBounded(t *testing.T) {
	type deep struct {
		Any any `json:"any"`
	}
	in := `{"any":` + repeat("[", 100) + repeat("]", 100) + `}`
	err := strictjson.Decode([]byte(in), &deep{})
	require.ErrorContains(t, err, "nested deeper")
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"type":"aio","size":1}`, `{"a":{"b":[1,{"c":null}]}}`, `{"Type":1}`, `{}`, `{"labels":{"a":"b"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c conf
		if err := strictjson.Decode(data, &c); err != nil && !errors.Is(err, strictjson.ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
	})
}
