package spdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// transcriptsDir is the repository's copy of the real SPDK recordings
// (shared/spdk/transcripts in the project's reference tree, which sits
// beside the repository). When that reference tree is present, the copy
// must still match it.
func transcriptsDir(t *testing.T) string {
	t.Helper()
	const dir = "testdata/transcripts"
	if ref := sharedTranscripts(); ref != "" {
		files, err := filepath.Glob(filepath.Join(ref, "*.jsonl"))
		require.NoError(t, err)
		for _, f := range files {
			want, err := os.ReadFile(f)
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(dir, filepath.Base(f)))
			require.NoError(t, err, "copy %s into spdk/testdata/transcripts", f)
			require.True(t, bytes.Equal(want, got), "spdk/testdata/transcripts/%s differs from %s: copy it again", filepath.Base(f), f)
		}
	}
	return dir
}

// sharedTranscripts finds shared/spdk/transcripts by walking up from the
// package directory, or returns "".
func sharedTranscripts() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		cand := filepath.Join(dir, "shared", "spdk", "transcripts")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// record is one request/response pair of a transcript.
type record struct {
	key      string // file:line
	method   string
	params   json.RawMessage
	response struct {
		Result json.RawMessage `json:"result"`
		Error  *wireError      `json:"error"`
	}
}

func loadTranscripts(t *testing.T) []record {
	dir := transcriptsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sort.Strings(files)
	var out []record
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for line := 1; sc.Scan(); line++ {
			var raw struct {
				Request    json.RawMessage `json:"request"`
				RequestRaw *string         `json:"request_raw"`
				Response   json.RawMessage `json:"response"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &raw), "%s:%d", f, line)
			if raw.RequestRaw != nil || len(raw.Request) == 0 || raw.Request[0] != '{' || len(raw.Response) == 0 || raw.Response[0] != '{' {
				continue // comments and protocol-level raw exchanges
			}
			var req struct {
				Method any             `json:"method"`
				Params json.RawMessage `json:"params"`
			}
			require.NoError(t, json.Unmarshal(raw.Request, &req))
			m, ok := req.Method.(string)
			if !ok {
				continue
			}
			r := record{key: fmt.Sprintf("%s:%d", filepath.Base(f), line), method: m, params: req.Params}
			require.NoError(t, json.Unmarshal(raw.Response, &r.response))
			out = append(out, r)
		}
		require.NoError(t, sc.Err())
		fh.Close()
	}
	return out
}

// errInexpressible marks a recorded request the typed API cannot produce (wrong types, unknown
// keys, missing required keys: the deliberate error cases).
var errInexpressible = errors.New("request not expressible through the typed API")

type invoker func(ctx context.Context, c *Client, params json.RawMessage) (any, error)

func strictDecode(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errInexpressible, err)
	}
	return nil
}

func typed[P, R any](fn func(*Client, context.Context, P) (R, error)) invoker {
	return func(ctx context.Context, c *Client, raw json.RawMessage) (any, error) {
		var p P
		if err := strictDecode(raw, &p); err != nil {
			return nil, err
		}
		return fn(c, ctx, p)
	}
}

func typedErr[P any](fn func(*Client, context.Context, P) error) invoker {
	return typed(func(c *Client, ctx context.Context, p P) (struct{}, error) { return struct{}{}, fn(c, ctx, p) })
}

func noParams[R any](fn func(*Client, context.Context) (R, error)) invoker {
	return func(ctx context.Context, c *Client, raw json.RawMessage) (any, error) {
		if len(raw) != 0 && string(raw) != "null" {
			return nil, fmt.Errorf("%w: takes no params", errInexpressible)
		}
		return fn(c, ctx)
	}
}

func noParamsErr(fn func(*Client, context.Context) error) invoker {
	return noParams(func(c *Client, ctx context.Context) (struct{}, error) { return struct{}{}, fn(c, ctx) })
}

// invokers maps every typed method to its Client method.
var invokers = map[string]invoker{
	"spdk_get_version":            noParams((*Client).SpdkGetVersion),
	"rpc_get_methods":             typed((*Client).RPCGetMethods),
	"framework_start_init":        noParamsErr((*Client).FrameworkStartInit),
	"framework_wait_init":         noParamsErr((*Client).FrameworkWaitInit),
	"spdk_kill_instance":          typedErr((*Client).SpdkKillInstance),
	"bdev_set_options":            typedErr((*Client).BdevSetOptions),
	"bdev_nvme_set_options":       typedErr((*Client).BdevNvmeSetOptions),
	"nvmf_set_config":             typedErr((*Client).NvmfSetConfig),
	"nvmf_set_max_subsystems":     typedErr((*Client).NvmfSetMaxSubsystems),
	"sock_impl_set_options":       typedErr((*Client).SockImplSetOptions),
	"iobuf_set_options":           typedErr((*Client).IOBufSetOptions),
	"framework_set_scheduler":     typedErr((*Client).FrameworkSetScheduler),
	"bdev_set_qd_sampling_period": typedErr((*Client).BdevSetQDSamplingPeriod),

	"bdev_get_bdevs":        typed((*Client).BdevGetBdevs),
	"bdev_examine":          typedErr((*Client).BdevExamine),
	"bdev_wait_for_examine": noParamsErr((*Client).BdevWaitForExamine),
	"bdev_set_qos_limit":    typedErr((*Client).BdevSetQosLimit),
	"bdev_get_iostat":       typed((*Client).BdevGetIostat),
	"bdev_enable_histogram": typedErr((*Client).BdevEnableHistogram),
	"bdev_get_histogram":    typed((*Client).BdevGetHistogram),
	"bdev_malloc_create":    typed((*Client).BdevMallocCreate),
	"bdev_malloc_delete":    typedErr((*Client).BdevMallocDelete),
	"bdev_aio_create":       typed((*Client).BdevAioCreate),
	"bdev_aio_delete":       typedErr((*Client).BdevAioDelete),
	"bdev_null_create":      typed((*Client).BdevNullCreate),
	"bdev_null_delete":      typedErr((*Client).BdevNullDelete),
	"bdev_passthru_create":  typed((*Client).BdevPassthruCreate),
	"bdev_passthru_delete":  typedErr((*Client).BdevPassthruDelete),

	"bdev_lvol_create_lvstore":  typed((*Client).BdevLvolCreateLvstore),
	"bdev_lvol_get_lvstores":    typed((*Client).BdevLvolGetLvstores),
	"bdev_lvol_delete_lvstore":  typedErr((*Client).BdevLvolDeleteLvstore),
	"bdev_lvol_create":          typed((*Client).BdevLvolCreate),
	"bdev_lvol_get_lvols":       typed((*Client).BdevLvolGetLvols),
	"bdev_lvol_delete":          typedErr((*Client).BdevLvolDelete),
	"bdev_lvol_snapshot":        typed((*Client).BdevLvolSnapshot),
	"bdev_lvol_clone":           typed((*Client).BdevLvolClone),
	"bdev_lvol_resize":          typedErr((*Client).BdevLvolResize),
	"bdev_lvol_rename":          typedErr((*Client).BdevLvolRename),
	"bdev_lvol_inflate":         typedErr((*Client).BdevLvolInflate),
	"bdev_lvol_decouple_parent": typedErr((*Client).BdevLvolDecoupleParent),
	"bdev_lvol_set_read_only":   typedErr((*Client).BdevLvolSetReadOnly),

	"bdev_raid_create":    typedErr((*Client).BdevRaidCreate),
	"bdev_raid_delete":    typedErr((*Client).BdevRaidDelete),
	"bdev_raid_get_bdevs": typed((*Client).BdevRaidGetBdevs),

	"bdev_nvme_attach_controller": typed((*Client).BdevNvmeAttachController),
	"bdev_nvme_detach_controller": typedErr((*Client).BdevNvmeDetachController),
	"bdev_nvme_get_controllers":   typed((*Client).BdevNvmeGetControllers),
	"bdev_nvme_get_io_paths":      typed((*Client).BdevNvmeGetIOPaths),

	"nvmf_create_transport":                 typedErr((*Client).NvmfCreateTransport),
	"nvmf_get_transports":                   noParams((*Client).NvmfGetTransports),
	"nvmf_create_subsystem":                 typedErr((*Client).NvmfCreateSubsystem),
	"nvmf_delete_subsystem":                 typedErr((*Client).NvmfDeleteSubsystem),
	"nvmf_subsystem_add_ns":                 typed((*Client).NvmfSubsystemAddNs),
	"nvmf_subsystem_remove_ns":              typedErr((*Client).NvmfSubsystemRemoveNs),
	"nvmf_subsystem_add_listener":           typedErr((*Client).NvmfSubsystemAddListener),
	"nvmf_subsystem_remove_listener":        typedErr((*Client).NvmfSubsystemRemoveListener),
	"nvmf_subsystem_listener_set_ana_state": typedErr((*Client).NvmfSubsystemListenerSetANAState),
	"nvmf_subsystem_add_host":               typedErr((*Client).NvmfSubsystemAddHost),
	"nvmf_subsystem_remove_host":            typedErr((*Client).NvmfSubsystemRemoveHost),
	"nvmf_subsystem_allow_any_host":         typedErr((*Client).NvmfSubsystemAllowAnyHost),
	"nvmf_get_subsystems":                   typed((*Client).NvmfGetSubsystems),
	"nvmf_subsystem_get_controllers":        typed((*Client).NvmfSubsystemGetControllers),
	"nvmf_subsystem_get_qpairs":             typed((*Client).NvmfSubsystemGetQpairs),
	"nvmf_subsystem_get_listeners":          typed((*Client).NvmfSubsystemGetListeners),
}

// inexpressible lists the recorded requests the typed API deliberately cannot send: they are
// the error cases of the recordings (wrong types, unknown keys, missing required keys, both
// lvol sizes). The test fails if this list and reality disagree in either direction.
var inexpressible = map[string]string{
	"09_errors.jsonl:18":  "bdev_get_bdevs with an unknown key",
	"09_errors.jsonl:19":  "bdev_get_bdevs with params as an empty array",
	"09_errors.jsonl:20":  "bdev_get_bdevs with params as an array",
	"09_errors.jsonl:21":  "bdev_get_bdevs with a numeric name",
	"09_errors.jsonl:22":  "bdev_malloc_create with a string num_blocks",
	"09_errors.jsonl:23":  "bdev_malloc_create without the required num_blocks",
	"09_errors.jsonl:24":  "bdev_malloc_create without params",
	"09_errors.jsonl:106": "bdev_lvol_create with both size and size_in_mib (refused locally)",
	"09_errors.jsonl:220": "bdev_raid_create with base_bdevs as a string",
	"09_errors.jsonl:274": "bdev_lvol_clone without the (effectively required) clone_name",
	"09_errors.jsonl:286": "bdev_lvol_clone without the (effectively required) clone_name",
}

// untyped lists recorded methods without a typed wrapper.
var untyped = map[string]bool{
	"perform_tests":  true, // bdevperf's test driver, not SPDK's target
	"no_such_method": true, // the -32601 probe
}

// replayServer answers each request with the recorded response of the current record and
// hands the params it received to the test.
type replayServer struct {
	mu  sync.Mutex
	rec *record
	got chan json.RawMessage
}

func (rs *replayServer) handle(r *serverReq) {
	rs.mu.Lock()
	rec := rs.rec
	rs.mu.Unlock()
	rs.got <- r.Params
	if rec.response.Error != nil {
		r.replyError(rec.response.Error.Code, rec.response.Error.Message)
		return
	}
	r.replyRawResult(rec.response.Result)
}

func jsonEqual(a, b json.RawMessage) bool {
	norm := func(m json.RawMessage) any {
		if len(m) == 0 {
			return nil
		}
		var v any
		if err := json.Unmarshal(m, &v); err != nil {
			return string(m)
		}
		return v
	}
	x, _ := json.Marshal(norm(a))
	y, _ := json.Marshal(norm(b))
	return bytes.Equal(x, y)
}

func TestGoldenTranscripts(t *testing.T) {
	records := loadTranscripts(t)
	rs := &replayServer{got: make(chan json.RawMessage, 1)}
	s := newTestServer(t, rs.handle)
	c := dialTest(t, s)

	gotInexpressible := map[string]string{}
	typedCount := map[string]int{}
	for i := range records {
		rec := &records[i]
		inv, ok := invokers[rec.method]
		if !ok {
			require.True(t, untyped[rec.method], "%s: no typed method for %s", rec.key, rec.method)
			continue
		}
		rs.mu.Lock()
		rs.rec = rec
		rs.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := inv(ctx, c, rec.params)
		cancel()
		if errors.Is(err, errInexpressible) || errors.Is(err, ErrBadRequest) {
			gotInexpressible[rec.key] = rec.method
			continue
		}
		sent := <-rs.got
		if !jsonEqual(sent, rec.params) {
			gotInexpressible[rec.key] = rec.method
			t.Logf("%s %s: typed API sends %s, recorded %s", rec.key, rec.method, sent, rec.params)
			continue
		}
		typedCount[rec.method]++
		if rec.response.Error != nil {
			var se *Error
			require.ErrorAs(t, err, &se, rec.key)
			require.Equal(t, Error{Method: rec.method, Code: rec.response.Error.Code, Message: rec.response.Error.Message}, *se, rec.key)
			continue
		}
		require.NoError(t, err, "%s %s", rec.key, rec.method)
		checkResult(t, rec.key, res)
	}
	for k, m := range gotInexpressible {
		_, listed := inexpressible[k]
		assert.True(t, listed, "%s (%s) cannot be expressed through the typed API", k, m)
	}
	for k := range inexpressible {
		require.Contains(t, gotInexpressible, k, "%s is listed as inexpressible but now matches", k)
	}
	t.Logf("typed calls matched per method: %v", typedCount)
	for _, m := range []string{"bdev_lvol_create", "nvmf_subsystem_add_ns", "nvmf_subsystem_add_listener",
		"bdev_raid_create", "bdev_nvme_attach_controller", "nvmf_create_subsystem", "bdev_get_bdevs"} {
		require.NotZero(t, typedCount[m], "no recorded %s matched", m)
	}
}

// checkResult asserts that the key fields of a decoded result are populated.
func checkResult(t *testing.T, key string, res any) {
	t.Helper()
	switch v := res.(type) {
	case []Bdev:
		for _, b := range v {
			checkBdev(t, key, b)
		}
	case []Lvstore:
		for _, l := range v {
			require.NotEmpty(t, l.UUID, key)
			require.NotEmpty(t, l.Name, key)
			require.NotZero(t, l.ClusterSize, key)
		}
	case []Lvol:
		for _, l := range v {
			require.NotEmpty(t, l.UUID, key)
			require.True(t, strings.HasSuffix(l.Alias, "/"+l.Name), key)
			require.NotEmpty(t, l.Lvs.UUID, key)
		}
	case []RaidBdev:
		for _, r := range v {
			require.NotEmpty(t, r.Name, key)
			require.NotEmpty(t, r.State, key)
			require.Len(t, r.BaseBdevsList, int(r.NumBaseBdevs), key)
		}
	case []NvmeController:
		for _, n := range v {
			require.NotEmpty(t, n.Name, key)
			require.NotEmpty(t, n.Ctrlrs, key)
			require.NotEmpty(t, n.Ctrlrs[0].State, key)
			require.NotEmpty(t, n.Ctrlrs[0].TRID.TRAddr, key)
		}
	case []Subsystem:
		for _, s := range v {
			checkSubsystem(t, key, s)
		}
	case []Listener:
		for _, l := range v {
			require.NotEmpty(t, l.Address.TRAddr, key)
		}
	case []NvmfController:
		for _, n := range v {
			require.NotEmpty(t, n.HostNQN, key)
		}
	case []Qpair:
		for _, q := range v {
			require.NotEmpty(t, q.State, key)
		}
	case []Transport:
		for _, tr := range v {
			require.NotEmpty(t, tr.TRType, key)
			require.NotZero(t, tr.MaxQueueDepth, key)
		}
	case IOStat:
		require.NotZero(t, v.TickRate, key)
		for _, b := range v.Bdevs {
			require.NotEmpty(t, b.Name, key)
		}
	case Version:
		require.True(t, v.AtLeast(24, 1), key)
		require.NotEmpty(t, v.Version, key)
	case Histogram:
		require.NotEmpty(t, v.Histogram, key)
		require.NotZero(t, v.TSCRate, key)
	case string:
		require.NotEmpty(t, v, key)
	case uint32:
		require.NotZero(t, v, key)
	case []string, IOPaths, struct{}:
	default:
		t.Fatalf("%s: unchecked result type %T", key, res)
	}
}

func checkSubsystem(t *testing.T, key string, s Subsystem) {
	t.Helper()
	require.NotEmpty(t, s.NQN, key)
	require.Contains(t, []string{"NVMe", "Discovery"}, s.Subtype, key)
	if s.Subtype != "NVMe" {
		return
	}
	require.NotEmpty(t, s.SerialNumber, key)
	require.NotZero(t, s.MaxCntlID, key)
	for _, a := range s.ListenAddresses {
		require.NotEmpty(t, a.TRSvcID, key)
	}
	for _, ns := range s.Namespaces {
		require.NotZero(t, ns.NSID, key)
		require.NotEmpty(t, ns.BdevName, key)
	}
}

func checkBdev(t *testing.T, key string, b Bdev) {
	t.Helper()
	require.NotEmpty(t, b.Name, key)
	require.NotEmpty(t, b.ProductName, key)
	require.NotZero(t, b.BlockSize, key)
	require.NotEmpty(t, b.UUID, key)
	ds := b.DriverSpecific
	switch b.ProductName {
	case ProductLvol:
		require.NotNil(t, ds.Lvol, key)
		require.NotEmpty(t, ds.Lvol.LvolStoreUUID, key)
		require.NotEmpty(t, ds.Lvol.BaseBdev, key)
	case ProductNVMe:
		require.NotEmpty(t, ds.NVMe, key)
		require.NotEmpty(t, ds.NVMe[0].TRID.TRAddr, key)
		require.NotZero(t, ds.NVMe[0].NSData.ID, key)
		require.NotEmpty(t, ds.MPPolicy, key)
	case ProductRaid:
		require.NotNil(t, ds.Raid, key)
		require.NotEmpty(t, ds.Raid.RaidLevel, key)
		require.NotEmpty(t, ds.Raid.BaseBdevsList, key)
	case ProductPassthru:
		require.NotNil(t, ds.Passthru, key)
		require.NotEmpty(t, ds.Passthru.BaseBdevName, key)
	case ProductAIO:
		require.NotNil(t, ds.AIO, key)
		require.NotEmpty(t, ds.AIO.Filename, key)
	}
	require.Empty(t, ds.Other, "%s: undecoded driver_specific of %s", key, b.ProductName)
}
