package agent

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/api/agentpb"
	"github.com/vda-io/vda/nvmeof"
	"github.com/vda-io/vda/spdk"
)

// recordedDN returns the state-changing requests real SPDK v24.01 got for
// disk node A's malloc PD and its thick VD (testdata/02_disk_nodes.jsonl, a
// copy of shared/spdk/transcripts): QoS (not part of the VDA recipe) and
// the extra thin lvol are left out.
func recordedDN(t *testing.T) []recordedRPC {
	f, err := os.Open("testdata/02_disk_nodes.jsonl")
	require.NoError(t, err)
	defer f.Close()
	var out []recordedRPC
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Note    string `json:"note"`
			Target  string `json:"target"`
			Request *struct {
				Method string         `json:"method"`
				Params map[string]any `json:"params"`
			} `json:"request"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		if strings.Contains(line.Note, "AIO") {
			break
		}
		if line.Request == nil || line.Target != "A" {
			continue
		}
		m, p := line.Request.Method, line.Request.Params
		switch {
		case spdk.IsReadOnly(m), m == "bdev_set_qos_limit", m == "bdev_lvol_create" && p["thin_provision"] == true:
			continue
		}
		out = append(out, recordedRPC{Method: m, Params: p})
	}
	require.NoError(t, sc.Err())
	return out
}

func TestDNRPCSequenceMatchesRecording(t *testing.T) {
	const (
		recPD, recVD, recCntlr = "4cfa6d7ecdb921d805cf088d0f4a082d", "2efb19d02fbdb36ff8e45d49858e505a", "77a34538bbb02ca53b6e7a76002f2aaf"
		recNQN                 = "nqn.2016-06.io.vda:be-" + recVD
	)
	want := recordedDN(t)
	require.Equal(t, []string{"nvmf_create_transport", "bdev_malloc_create", "bdev_examine", "bdev_lvol_create_lvstore",
		"bdev_lvol_create", "nvmf_create_subsystem", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_listener", "nvmf_subsystem_add_host"},
		methodsOf(want), "the recording's disk node steps")

	e := newDNEnv(t)
	pd, vd, cntlr := nvmeof.NewID(), nvmeof.NewID(), nvmeof.NewID()
	nqn := nvmeof.VDNQN(vd)
	lvs := nvmeof.PDLvstoreName(pd)
	e.rec.reset()
	e.syncOK(&agentpb.DnState{Pds: []*agentpb.PdSpec{mallocPD(pd, 128<<20, vdSpec(vd, nvmeof.NewID(), cntlr, 1, 96))}})
	got := e.rec.mutations()
	require.Equal(t, methodsOf(want), methodsOf(got), "same steps in the same order")

	// VDA's names for the recording's, and the recording's listener port.
	names := map[string]string{
		"vda-000-" + recPD:                     nvmeof.PDBdevName(pd),
		"vda-001-" + recPD:                     lvs,
		"vda-001-" + recPD + "/" + recVD:       nvmeof.LvolAlias(lvs, nvmeof.VDLvolName(vd)),
		recVD:                                  nvmeof.VDLvolName(vd),
		recNQN:                                 string(nqn),
		"nqn.2016-06.io.vda:fe-" + recCntlr:    string(nvmeof.PrimaryHostNQN(cntlr, 1)),
		"70b05eab596141a7f84c":                 nvmeof.SerialNumber(nqn),
		"70b05eab-5961-41a7-f84c-6786dcd78c66": nvmeof.NamespaceUUID(nqn),
		"4420":                                 e.listener.TrSvcID,
	}
	for i := range want {
		w := rename(want[i].Params, names).(map[string]any)
		switch want[i].Method {
		case "bdev_lvol_create_lvstore":
			// none, as recorded, only because the malloc was made by the same
			// sync (zeroed): see dnLvstoreClearMethod and pdResult.zeroed.
			require.Equal(t, "none", w["clear_method"])
		case "bdev_lvol_create":
			// Deliberate: size_in_mib (the only form SPDK 24.05+ takes) instead
			// of the deprecated size in bytes, and write_zeroes instead of none.
			require.Equal(t, "none", w["clear_method"])
			w["clear_method"] = dnLvolClearMethod
			w["size_in_mib"] = w["size"].(float64) / (1 << 20)
			delete(w, "size")
		}
		require.Equal(t, w, got[i].Params, "params of %s", want[i].Method)
	}
}

func methodsOf(rpcs []recordedRPC) []string {
	out := make([]string, len(rpcs))
	for i, r := range rpcs {
		out[i] = r.Method
	}
	return out
}

// rename replaces every string value that names something in names.
func rename(v any, names map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = rename(e, names)
		}
		return out
	case string:
		if n, ok := names[x]; ok {
			return n
		}
	}
	return v
}
