package spdk

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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
	taken := 0
	files, err := filepath.Glob(filepath.Join(transcriptsDir(t), "*.jsonl"))
	require.NoError(t, err)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, line := range strings.Split(string(data), "\n") {
			var rec struct {
				Request struct {
					Method string `json:"method"`
				} `json:"request"`
				Response struct {
					Result json.RawMessage `json:"result"`
				} `json:"response"`
			}
			if json.Unmarshal([]byte(line), &rec) != nil || rec.Request.Method != "nvmf_subsystem_get_listeners" ||
				rec.Response.Result == nil {
				continue
			}
			got, ok := decodeListeners(rec.Response.Result)
			require.True(t, ok, "%s", rec.Response.Result)
			var want []Listener
			require.NoError(t, json.Unmarshal(rec.Response.Result, &want))
			require.Equal(t, want, got)
			taken++
		}
	}
	require.NotZero(t, taken, "the recordings hold nvmf_subsystem_get_listeners replies")
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
