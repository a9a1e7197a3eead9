package spdktest

// Generated differential scenarios: random valid and invalid parameters
// over a topic's methods, so the recordings cover combinations nobody
// thought to write down. A topic registers a genTopic in genTopics (in its
// own diffgen_<topic>_test.go); VDA_SPDK_GEN=1 go test -run
// TestGenerateScenarios writes testdata/diff/scenarios/gen_<topic>.jsonl,
// deterministically from the topic's seed, and the recorder then records
// them like any other scenario.

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// genParam is one parameter and the values to try for it: valid ones and
// invalid ones alike. genOmit in Values means "leave the key out".
type genParam struct {
	Key    string
	Values []any
}

// genOmit leaves a parameter out of a generated request.
var genOmit = &struct{ omit bool }{true}

// genMethod generates calls of one method: Base is a valid call (ordered
// key/value pairs); each generated call changes 1-3 of Params.
type genMethod struct {
	Method string
	Target string // "A" if empty
	Base   []genKV
	Params []genParam
	Weight int // relative frequency (1 if zero)
}

type genKV struct {
	Key   string
	Value any
}

// genTopic is a topic's generator: Setup lines run first (raw scenario
// lines), then N calls drawn from Methods; Between, if set, is inserted
// after every call (e.g. a cleanup that makes the next call independent).
type genTopic struct {
	Seed    int64
	N       int
	Setup   []string
	Methods []genMethod
	Between func(m genMethod, params []genKV) []string
}

// genTopics is filled by the topics' init functions.
var genTopics = map[string]genTopic{}

// genValues are generic bad values most parameters should refuse.
func genValues(extra ...any) []any {
	return append(extra, genOmit, nil, "", -1, 0, 1.5, true, "x", []any{}, map[string]any{}, int64(1)<<40)
}

func (g genTopic) generate() []byte {
	rng := rand.New(rand.NewSource(g.Seed))
	var b bytes.Buffer
	for _, l := range g.Setup {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	total := 0
	for _, m := range g.Methods {
		total += max(m.Weight, 1)
	}
	for i := 0; i < g.N; i++ {
		pick := rng.Intn(total)
		var m genMethod
		for _, c := range g.Methods {
			if pick -= max(c.Weight, 1); pick < 0 {
				m = c
				break
			}
		}
		params := append([]genKV(nil), m.Base...)
		if len(m.Params) > 0 {
			for n := 1 + rng.Intn(3); n > 0; n-- {
				p := m.Params[rng.Intn(len(m.Params))]
				params = genSet(params, p.Key, p.Values[rng.Intn(len(p.Values))])
			}
		}
		target := m.Target
		if target == "" {
			target = "A"
		}
		b.WriteString(genLine(target, m.Method, params))
		b.WriteByte('\n')
		if g.Between != nil {
			for _, l := range g.Between(m, params) {
				b.WriteString(l)
				b.WriteByte('\n')
			}
		}
	}
	return b.Bytes()
}

func genSet(params []genKV, key string, v any) []genKV {
	for i, kv := range params {
		if kv.Key == key {
			if v == genOmit {
				return append(params[:i:i], params[i+1:]...)
			}
			params[i].Value = v
			return params
		}
	}
	if v == genOmit {
		return params
	}
	return append(params, genKV{key, v})
}

// genLine renders a scenario line with the parameters in order.
func genLine(target, method string, params []genKV) string {
	var b bytes.Buffer
	t, _ := json.Marshal(target)
	mm, _ := json.Marshal(method)
	b.WriteString(`{"target": ` + string(t) + `, "request": {"method": ` + string(mm))
	if params != nil {
		b.WriteString(`, "params": {`)
		for i, kv := range params {
			if i > 0 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(kv.Key)
			v, _ := json.Marshal(kv.Value)
			b.WriteString(string(k) + ": " + string(v))
		}
		b.WriteString("}")
	}
	b.WriteString("}}")
	return b.String()
}

func TestGenerateScenarios(t *testing.T) {
	names := make([]string, 0, len(genTopics))
	for n := range genTopics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		data := genTopics[n].generate()
		path := filepath.Join(diffDir, "scenarios", "gen_"+n+".jsonl")
		if os.Getenv("VDA_SPDK_GEN") == "1" {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// The committed scenario is the generator's output: a change to
		// either without the other is caught here.
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (VDA_SPDK_GEN=1 writes it)", path, err)
		}
		if !bytes.Equal(old, data) {
			t.Errorf("%s differs from its generator's output: regenerate with VDA_SPDK_GEN=1 and re-record", path)
		}
	}
}
