package spdk

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func decodeListeners(b []byte) ([]Listener, bool) { return decodeList(b, (*fastParser).listener) }

var listenerSeeds = []string{
	`[]`, ` [ ] `, `null`, `[{}]`,
	`[{"address":{"trtype":"TCP","adrfam":"IPv4","traddr":"127.0.0.1","trsvcid":"4420"}}]`,
	`[{"address":{"trtype":"TCP","adrfam":"IPv4","traddr":"10.0.0.1","trsvcid":"4420"},"ana_states":[{"ana_group":1,"ana_state":"optimized"},{"ana_group":2,"ana_state":"inaccessible"}]}]`,
	`[{"address":{"trtype":"TCP"},"ana_state":"optimized"},{"address":{"subnqn":"nqn.x"},"ana_states":[]}]`,
	` [ { "address" : { "trtype" : "TCP" } , "ana_states" : [ { "ana_group" : 0 , "ana_state" : "x" } ] } ] `,
	`[{"Address":{"trtype":"TCP"}}]`, `[{"address":{"trtype":"T\u0043P"}}]`, `[{"address":null}]`, `[null]`,
	`[{"address":{"trtype":"TCP","trtype":"RDMA"}}]`, `[{"ana_states":[{"ana_group":01}]}]`,
	`[{"ana_states":[{"ana_group":4294967296}]}]`, `[{"ana_states":[{"ana_group":4294967295}]}]`,
	`[{"ana_states":[{"ana_group":1.0}]}]`, `[{"ana_states":[{"ana_group":1e2}]}]`, `[{"ana_states":[{"ana_group":-1}]}]`,
	`[{"other":1}]`, `[{"address":{"trtype":"é"}}]`, `[{}] x`, `[{},]`, `[{"ana_state":"a",}]`, `{"address":{}}`,
}

// decodeListeners decodes what it takes exactly as encoding/json does, and leaves everything
// else to it: the result and the error are encoding/json's.
func FuzzDecodeListeners(f *testing.F) {
	for _, s := range listenerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecodeList(t, b, (*fastParser).listener) })
}

// The replies of real SPDK v24.01 (the recordings) and of the fake take the one-pass decode.
func TestDecodeListenersTakesSPDKReplies(t *testing.T) {
	for _, r := range recordedResults(t, "nvmf_subsystem_get_listeners") {
		got, ok := decodeListeners(r)
		require.True(t, ok, "%s", r)
		var want []Listener
		require.NoError(t, json.Unmarshal(r, &want))
		require.Equal(t, want, got)
	}
	for _, s := range listenerSeeds[4:8] {
		_, ok := decodeListeners([]byte(s))
		require.True(t, ok, s)
	}
}

// BenchmarkDecodeListeners decodes one exporter's listener with its ANA state, as the fake and
// SPDK v24.01 answer nvmf_subsystem_get_listeners.
func BenchmarkDecodeListeners(b *testing.B) {
	reply := []byte(listenerSeeds[5])
	b.Run("onepass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := decodeListeners(reply); !ok {
				b.Fatal("not taken")
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var l []Listener
			if err := json.Unmarshal(reply, &l); err != nil {
				b.Fatal(err)
			}
		}
	})
}
