package agent

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// cnRecipeMethods are the state-changing steps of the CN recipe. The
// recordings also hold steps VDA no longer takes on a CN: the old
// bdev_raid_delete probe before every create (we list instead), two
// passthru bdevs between raid and lvstore (the lvstore sits on the raid),
// bdev_set_qos_limit (no QoS in the desired state), and the snapshot,
// clone, resize and histogram calls that follow the recipe.
var cnRecipeMethods = []string{
	"nvmf_create_transport", "bdev_nvme_attach_controller", "bdev_raid_create", "bdev_examine",
	"bdev_lvol_create_lvstore", "bdev_lvol_create", "nvmf_create_subsystem", "nvmf_subsystem_add_ns",
	"nvmf_subsystem_add_listener", "nvmf_subsystem_add_host",
}

// cnExtraParams are the params VDA sends beyond the recordings, each for a
// reason: reconnect settings chosen on purpose (cn_primary.go), the raid's
// epoch UUID, ANA reporting and controller-ID ranges for multipath, and the
// listener's ANA state. cnRenamedParams: the lvol size in MiB (SPDK 24.05+
// knows only that form) instead of the deprecated bytes.
var (
	cnExtraParams = map[string][]string{
		"bdev_nvme_attach_controller": {"ctrlr_loss_timeout_sec", "reconnect_delay_sec", "fast_io_fail_timeout_sec", "fabrics_connect_timeout_us"},
		"bdev_raid_create":            {"uuid"},
		"nvmf_create_subsystem":       {"ana_reporting", "min_cntlid", "max_cntlid"},
		"nvmf_subsystem_add_listener": {"ana_state"},
	}
	cnRenamedParams = map[string]map[string]string{"bdev_lvol_create": {"size": "size_in_mib"}}
	// cnSameValues are params whose values must equal the recording's.
	cnSameValues = []string{"trtype", "adrfam", "raid_level", "strip_size_kb", "clear_method", "thin_provision",
		"allow_any_host", "model_number", "nsid", "num_md_pages_per_cluster_ratio"}
)

func cnTranscriptsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		cand := filepath.Join(dir, "shared", "spdk", "transcripts")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared/spdk/transcripts not found beside the repository")
		}
		dir = parent
	}
}

// cnRecorded returns target's successful recipe requests in file, from the
// first request of method from on.
func cnRecorded(t *testing.T, file, target, from string) []cnRequest {
	t.Helper()
	f, err := os.Open(filepath.Join(cnTranscriptsDir(t), file))
	require.NoError(t, err)
	defer f.Close()
	var out []cnRequest
	started := from == ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Target   string          `json:"target"`
			Request  *cnRequest      `json:"request"`
			Response json.RawMessage `json:"response"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		if line.Request == nil || line.Target != target {
			continue
		}
		if line.Request.Method == "bdev_lvol_resize" {
			break // the recipe is over; growing and snapshots follow
		}
		started = started || line.Request.Method == from
		var resp struct {
			Error json.RawMessage `json:"error"`
		}
		_ = json.Unmarshal(line.Response, &resp)
		if started && resp.Error == nil && slices.Contains(cnRecipeMethods, line.Request.Method) {
			out = append(out, *line.Request)
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// cnCompareShapes checks that ours runs the recorded steps in the same
// order with the same param shapes (and the same values where VDA's names
// play no part).
func cnCompareShapes(t *testing.T, recorded, ours []cnRequest) {
	t.Helper()
	require.GreaterOrEqual(t, len(recorded), 6, "the recording's recipe")
	t.Logf("recipe: %v", cnMethods(recorded))
	require.Equal(t, cnMethods(recorded), cnMethods(ours))
	for i := range recorded {
		m := recorded[i].Method
		var rec, got map[string]any
		require.NoError(t, json.Unmarshal(recorded[i].Params, &rec))
		require.NoError(t, json.Unmarshal(ours[i].Params, &got))
		want := cnKeys(rec, cnRenamedParams[m])
		for _, k := range cnExtraParams[m] {
			if !slices.Contains(want, k) {
				want = append(want, k)
			}
		}
		sort.Strings(want)
		require.Equal(t, want, cnKeys(got, nil), "step %d %s: %s vs %s", i, m, recorded[i].Params, ours[i].Params)
		cnSameValuesIn(t, m, rec, got)
	}
}

// cnKeys lists the keys of p, nested objects as "outer.inner", sorted.
func cnKeys(p map[string]any, rename map[string]string) []string {
	var out []string
	for k, v := range p {
		if r, ok := rename[k]; ok {
			k = r
		}
		if sub, ok := v.(map[string]any); ok {
			for _, sk := range cnKeys(sub, nil) {
				out = append(out, k+"."+sk)
			}
			continue
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func cnSameValuesIn(t *testing.T, method string, rec, got map[string]any) {
	t.Helper()
	for k, v := range rec {
		if sub, ok := v.(map[string]any); ok {
			gs, _ := got[k].(map[string]any)
			cnSameValuesIn(t, method+"."+k, sub, gs)
			continue
		}
		if slices.Contains(cnSameValues, k) {
			require.Equal(t, v, got[k], "%s: %s", method, k)
		}
	}
}

func TestCNPrimaryMatchesTheRecording(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	p := newRecordedCNEnv(t)
	cl.cns[0] = p
	cl.syncDNs()
	p.rec.take()
	p.syncCN(cl.cnState(0))
	cl.initialized = true
	p.syncCNOK(cl.cnState(0))
	cnCompareShapes(t, cnRecorded(t, "03_controller_primary.jsonl", "C", ""), cnMutating(p.rec.take()))
}

func TestCNSecondaryMatchesTheRecording(t *testing.T) {
	cl := newCNCluster(t, 2, 2, 2)
	s := newRecordedCNEnv(t)
	cl.cns[1] = s
	cl.syncDNs()
	cl.cns[0].syncCN(cl.cnState(0))
	cl.initialized = true
	cl.cns[0].syncCNOK(cl.cnState(0))
	s.rec.take()
	s.syncCNOK(cl.cnState(1))
	// The recording's secondary first exported without a controller-ID
	// range, was refused by the host, and re-created the subsystem with
	// min/max_cntlid 1001-2000: VDA's secondary does it right at once.
	recorded := cnRecorded(t, "05_secondary_failover.jsonl", "D", "nvmf_create_transport")
	second := slices.IndexFunc(recorded[3:], func(q cnRequest) bool { return q.Method == "nvmf_create_subsystem" }) + 3
	recorded = append(recorded[:2:2], recorded[second:]...)
	ours := cnMutating(s.rec.take())
	cnCompareShapes(t, recorded, ours)
	var sub map[string]any
	require.NoError(t, json.Unmarshal(ours[2].Params, &sub))
	var rec map[string]any
	require.NoError(t, json.Unmarshal(recorded[2].Params, &rec))
	require.Equal(t, rec["min_cntlid"], sub["min_cntlid"], "index 1 gets the recording's 1001-2000")
	require.Equal(t, rec["max_cntlid"], sub["max_cntlid"])
}
