package spdktest

// The transcript replay test drives fresh fakes through every recording in
// shared/spdk/transcripts, in file order, and compares each response with the
// recorded one.
//
// Rules:
//
//   - One fake per target label (A, B, C, D, X and H), started on first use.
//     A label whose next requests include framework_start_init starts with
//     --wait-for-rpc. After spdk_kill_instance the label is restarted on its
//     next request; a note with "killed_pid" crashes the named label (kill -9).
//   - H is bdevperf in the recordings. Its perform_tests calls are skipped
//     (the fake is an spdk_tgt, not bdevperf); everything else it was sent
//     (bdev_nvme_*, bdev_get_bdevs, bdev_get_iostat, ...) is replayed.
//   - UUIDs are mapped bijectively: the first time a recorded uuid (or NGUID,
//     or the uuid inside a generated host NQN) meets a fake's value at the
//     same position, they are bound, and every later occurrence on either
//     side must agree with that binding. Requests are rewritten through the
//     binding (e.g. bdev_lvol_delete by uuid).
//   - Ports: every recorded trsvcid that is a port number is remapped to a port reserved on
//     127.0.0.1 (package reserve) in requests and mapped back in responses;
//     every fake may listen on the reserved ports. Port 4429, "held by
//     another process" in the recording, is held by a listener of the test.
//   - File paths ("filename") are remapped into t.TempDir(); the AIO file is
//     created as a sparse 256 MiB file, /nonexistent stays missing.
//   - Values that differ from run to run are not compared, only their
//     presence: "ticks", "*_latency_ticks", "hostid", the histogram payload,
//     and the I/O counters of bdev_get_iostat (they count the real metadata
//     and bdevperf/spdk_dd I/O of the recording, which the replay does not
//     repeat). bdev_get_iostat without a name is compared as a set, sorted by
//     name: SPDK listed it in channel-completion order.
//   - Asynchronous state: examine runs with a long delay so the recorded -19
//     polls right after bdev_examine reproduce deterministically. When a read
//     RPC differs, pending examines are completed and the call is retried for
//     up to two seconds (path failures after a crash are asynchronous too).
//   - Raw exchanges (09_errors.jsonl) run on fresh connections and compare
//     bytes, with uuids mapped.
//
// Every remaining difference must be listed in testdata/KNOWN_DIFFERENCES.md
// (file, target, id, method); the test fails on any other difference.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vda-io/vda/spdk/spdktest/reserve"
)

// transcriptsDir is the repository's copy of the recordings (the spdk
// package's tests check that it matches the project's reference tree).
const transcriptsDir = "../testdata/transcripts"

type recLine struct {
	Note             string          `json:"note"`
	Target           string          `json:"target"`
	Request          json.RawMessage `json:"request"`
	RequestRaw       *string         `json:"request_raw"`
	Response         json.RawMessage `json:"response"`
	ResponseRaw      string          `json:"response_raw"`
	ConnectionClosed bool            `json:"connection_closed"`
	KilledPID        int             `json:"killed_pid"`
	// Directives of the differential scenarios (see diff_test.go).
	File    string `json:"file"`
	Size    int64  `json:"size"`
	SleepMS int    `json:"sleep_ms"`

	file   string
	lineNo int
	method string
	id     string
}

func loadTranscripts(t *testing.T, dir string) []*recLine {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts in %s: %v", dir, err)
	}
	sort.Strings(files)
	var out []*recLine
	for _, f := range files {
		out = append(out, loadRecording(t, f)...)
	}
	return out
}

// loadRecording parses one JSON Lines recording (or scenario).
func loadRecording(t *testing.T, f string) []*recLine {
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []*recLine
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l recLine
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("%s:%d: %v", f, i+1, err)
		}
		l.file, l.lineNo = filepath.Base(f), i+1
		var req struct {
			Method any             `json:"method"`
			ID     json.RawMessage `json:"id"`
		}
		if l.Request != nil && json.Unmarshal(l.Request, &req) == nil {
			l.method, _ = req.Method.(string)
			l.id = string(req.ID)
		}
		out = append(out, &l)
	}
	return out
}

type replayTarget struct {
	label   string
	srv     *Server
	conn    net.Conn
	dec     *json.Decoder
	crashed bool // the fake died on the last request: restart it
}

type replayer struct {
	t       *testing.T
	lines   []*recLine
	pos     int
	tmp     string
	targets map[string]*replayTarget
	ports   map[string]string
	portRev map[string]string
	held    []net.Listener
	rsv     []*reserve.Port // the remapped ports, for every target
	uuidFwd map[string]string
	uuidRev map[string]string
	paths   map[string]string
	pathRev map[string]string
	diffs   []replayDiff
	known   map[string]bool
}

type replayDiff struct {
	file, target, id, method, detail string
}

func (d replayDiff) key() string { return d.file + "|" + d.target + "|" + d.id + "|" + d.method }

func TestReplayTranscripts(t *testing.T) {
	known := loadKnownDifferences(t)
	diffs, replayed := replayLines(t, loadTranscripts(t, transcriptsDir), known)
	reportDiffs(t, diffs, known, "")
	t.Logf("replayed %d exchanges, %d known differences", replayed, len(diffs))
}

// replayLines replays recorded lines against fresh fakes, one per target
// label, and returns every difference (known ones included).
func replayLines(t *testing.T, lines []*recLine, known map[string]bool) (diffs []replayDiff, replayed int) {
	r := &replayer{
		t: t, lines: lines, tmp: t.TempDir(),
		targets: map[string]*replayTarget{}, ports: map[string]string{}, portRev: map[string]string{},
		uuidFwd: map[string]string{}, uuidRev: map[string]string{},
		paths: map[string]string{}, pathRev: map[string]string{},
		known: known,
	}
	t.Cleanup(func() {
		for _, l := range r.held {
			_ = l.Close()
		}
	})
	for r.pos = 0; r.pos < len(r.lines); r.pos++ {
		l := r.lines[r.pos]
		switch {
		case l.Request == nil && l.RequestRaw == nil:
			switch {
			case l.KilledPID != 0:
				r.crash(l.Note)
			case l.File != "":
				r.makeFile(l.File, l.Size)
			case l.SleepMS > 0:
				// The recording waited this long for a timer of SPDK's
				// (a reconnect delay, a loss timeout); the fake's run in
				// wall time too.
				time.Sleep(time.Duration(l.SleepMS) * time.Millisecond)
			}
		case l.RequestRaw != nil:
			r.raw(l)
			replayed++
		case l.Target == "H" && l.method == "perform_tests":
		default:
			r.pair(l)
			replayed++
		}
	}
	return r.diffs, replayed
}

// reportDiffs fails t for every difference that KNOWN_DIFFERENCES.md does
// not list, and logs the entries for files with prefix that no longer
// differ.
func reportDiffs(t *testing.T, diffs []replayDiff, known map[string]bool, prefix string) {
	used := map[string]bool{}
	for _, d := range diffs {
		k := d.key()
		wild := d.file + "|" + d.target + "|*|" + d.method
		switch {
		case known[k]:
			used[k] = true
		case known[wild]:
			used[wild] = true
		default:
			t.Errorf("%s %s id=%s %s: %s", d.file, d.target, d.id, d.method, d.detail)
		}
	}
	for k := range known {
		if !used[k] && strings.HasPrefix(k, prefix) {
			t.Logf("KNOWN_DIFFERENCES.md entry no longer differs: %s", k)
		}
	}
}

// loadKnownDifferences parses the table rows "| file | target | id | method | reason |".
func loadKnownDifferences(t *testing.T) map[string]bool {
	data, err := os.ReadFile(filepath.Join("testdata", "KNOWN_DIFFERENCES.md"))
	if err != nil {
		t.Fatalf("read known differences: %v", err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 6 || !strings.HasSuffix(strings.TrimSpace(cells[1]), ".jsonl") {
			continue
		}
		f := func(i int) string { return strings.Trim(strings.TrimSpace(cells[i]), "`") }
		out[f(1)+"|"+f(2)+"|"+f(3)+"|"+f(4)] = true
	}
	return out
}

func (r *replayer) fail(l *recLine, format string, args ...any) {
	r.diffs = append(r.diffs, replayDiff{file: l.file, target: l.Target, id: l.id, method: l.method, detail: fmt.Sprintf(format, args...)})
}

// waitForRPC looks ahead: a label that is about to call framework_start_init
// was started with --wait-for-rpc.
func (r *replayer) waitForRPC(label string) bool { return startsWaiting(r.lines[r.pos:], label) }

// startsWaiting reports whether label's next requests in lines (within a
// dozen) include framework_start_init: its target starts with
// --wait-for-rpc.
func startsWaiting(lines []*recLine, label string) bool {
	n := 0
	for _, l := range lines {
		if l.Target != label || l.Request == nil {
			continue
		}
		if l.method == "framework_start_init" {
			return true
		}
		if n++; n > 12 {
			return false
		}
	}
	return false
}

func (r *replayer) target(label string) *replayTarget {
	rt := r.targets[label]
	if rt == nil {
		rt = &replayTarget{label: label}
		rt.srv = NewServer(r.t, WithWaitForRPC(), WithExamineDelay(time.Hour), WithReserved(r.rsv...))
		if !r.waitForRPC(label) {
			if err := rt.srv.Restart(false); err != nil {
				r.t.Fatal(err)
			}
		}
		r.targets[label] = rt
	}
	exited := rt.crashed
	select {
	case <-rt.srv.Exited():
		exited = true
	default:
	}
	if exited {
		rt.crashed = false
		r.dropConn(rt)
		if err := rt.srv.Restart(r.waitForRPC(label)); err != nil {
			r.t.Fatal(err)
		}
	}
	if rt.conn == nil {
		c, err := net.Dial("unix", rt.srv.SockPath())
		if err != nil {
			r.t.Fatalf("dial %s: %v", label, err)
		}
		rt.conn, rt.dec = c, json.NewDecoder(c)
		rt.dec.UseNumber()
	}
	return rt
}

func (r *replayer) dropConn(rt *replayTarget) {
	if rt.conn != nil {
		_ = rt.conn.Close()
		rt.conn, rt.dec = nil, nil
	}
}

var killedLabel = regexp.MustCompile(`kill -9 of [a-z ]*\b([A-Z])\b`)

func (r *replayer) crash(note string) {
	m := killedLabel.FindStringSubmatch(note)
	if m == nil {
		r.t.Fatalf("cannot tell which target the note kills: %q", note)
	}
	rt := r.targets[m[1]]
	if rt == nil {
		r.t.Fatalf("kill of unknown target %s", m[1])
	}
	r.dropConn(rt)
	rt.srv.Crash()
	rt.crashed = true
}

// pair replays one request/response pair.
func (r *replayer) pair(l *recLine) {
	rt := r.target(l.Target)
	var req any
	dec := json.NewDecoder(bytes.NewReader(l.Request))
	dec.UseNumber() // integers beyond 2^53 are sent as recorded
	if err := dec.Decode(&req); err != nil {
		r.t.Fatal(err)
	}
	req = r.rewrite(req, "")
	body, _ := json.Marshal(req)
	if l.ConnectionClosed && (len(l.Response) == 0 || string(l.Response) == "null") {
		// Real SPDK died on this request (or closed the connection).
		if _, err := r.call(rt, body); err == nil {
			r.fail(l, "real SPDK closed the connection (crashed) on this request; the fake answered")
		}
		r.dropConn(rt)
		// The real target died: its label's next request met a fresh one.
		rt.crashed = true
		return
	}
	// Known differences are not transient: do not wait for them to go away.
	d := replayDiff{file: l.file, target: l.Target, id: l.id, method: l.method}
	readOnly := asyncReads[l.method] && !r.known[d.key()] && !r.known[l.file+"|"+l.Target+"|*|"+l.method]
	deadline := time.Now().Add(time.Second)
	if l.method == "bdev_wait_for_examine" {
		// Examines run an hour late in the replay: the recorded wait saw
		// them finish.
		rt.srv.CompleteExamines()
	}
	for {
		act, err := r.call(rt, body)
		if err != nil {
			r.fail(l, "no reply: %v", err)
			r.dropConn(rt)
			return
		}
		var diffs []string
		r.compareReply(l, act, &diffs, !readOnly || time.Now().After(deadline))
		if len(diffs) == 0 {
			return
		}
		if !readOnly || time.Now().After(deadline) {
			r.fail(l, "%s", strings.Join(diffs, "; "))
			return
		}
		rt.srv.CompleteExamines()
		time.Sleep(10 * time.Millisecond) // retry an asynchronous read; not synchronisation
	}
}

// asyncReads are the read RPCs whose answer may lag behind an asynchronous
// change (examine, a lost path); they are retried before a difference counts.
var asyncReads = map[string]bool{
	"bdev_lvol_get_lvstores": true, "bdev_lvol_get_lvols": true, "bdev_get_bdevs": true,
	"bdev_nvme_get_controllers": true, "nvmf_subsystem_get_controllers": true,
	"nvmf_get_subsystems": true, "bdev_get_iostat": true, "bdev_nvme_get_io_paths": true,
}

func (r *replayer) call(rt *replayTarget, body []byte) (any, error) {
	_ = rt.conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := rt.conn.Write(body); err != nil {
		return nil, err
	}
	v, err := decodeOrdered(rt.dec)
	if err != nil {
		return nil, err
	}
	if m, ok := v.(omap); ok && m.get("result") == true && bytes.Contains(body, []byte(`"spdk_kill_instance"`)) {
		r.dropConn(rt) // the process exits after this reply
		select {
		case <-rt.srv.Exited():
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("target %s did not exit after spdk_kill_instance", rt.label)
		}
	}
	return v, nil
}

// compareReply compares the recorded response with act. bind decides
// whether new uuid bindings are kept (not on a retry attempt that may be
// repeated).
func (r *replayer) compareReply(l *recLine, act any, diffs *[]string, bind bool) {
	dec := json.NewDecoder(bytes.NewReader(l.Response))
	dec.UseNumber()
	rec, err := decodeOrdered(dec)
	if err != nil {
		r.t.Fatal(err)
	}
	fwd, rev := r.uuidFwd, r.uuidRev
	if !bind {
		fwd, rev = cloneMap(fwd), cloneMap(rev)
	}
	c := &comparer{r: r, fwd: fwd, rev: rev, method: l.method, diffs: diffs}
	if l.method == "bdev_get_iostat" {
		sortIostat(rec, nil)
		sortIostat(act, r)
	}
	c.cmp(rec, act, "")
	if len(*diffs) == 0 && !bind {
		r.uuidFwd, r.uuidRev = fwd, rev
	}
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sortIostat sorts the bdevs of an iostat result by (recorded) name.
func sortIostat(v any, r *replayer) {
	m, ok := v.(omap)
	if !ok {
		return
	}
	res, ok := m.get("result").(omap)
	if !ok {
		return
	}
	bdevs, ok := res.get("bdevs").([]any)
	if !ok || len(bdevs) < 2 {
		return
	}
	name := func(b any) string {
		bm, _ := b.(omap)
		n, _ := bm.get("name").(string)
		if r != nil {
			if x, ok := r.uuidRev[n]; ok {
				return x
			}
		}
		return n
	}
	sort.SliceStable(bdevs, func(i, j int) bool { return name(bdevs[i]) < name(bdevs[j]) })
}

// raw replays one raw exchange on a fresh connection and compares bytes.
func (r *replayer) raw(l *recLine) {
	rt := r.target(l.Target)
	c, err := net.Dial("unix", rt.srv.SockPath())
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, *l.RequestRaw); err != nil {
		r.t.Fatal(err)
	}
	want := l.ResponseRaw
	got := make([]byte, len(want))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.ReadFull(c, got)
	got = got[:n]
	if err != nil && len(want) > 0 {
		r.fail(l, "raw (line %d): read %q: %v", l.lineNo, got, err)
		return
	}
	if len(want) == 0 {
		// Either the server closes (unparseable JSON) or it waits for more
		// bytes (truncated JSON): tell them apart with a short read.
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var one [1]byte
		_, err := c.Read(one[:])
		var ne net.Error
		closed := errors.Is(err, io.EOF)
		timedOut := errors.As(err, &ne) && ne.Timeout()
		if (l.ConnectionClosed && !closed) || (!l.ConnectionClosed && !timedOut) {
			r.fail(l, "raw: want closed=%v, read err %v", l.ConnectionClosed, err)
		}
		return
	}
	if mapped := r.mapRawUUIDs(string(got), want); mapped != want {
		r.fail(l, "raw: got %q want %q", mapped, want)
	}
}

var uuidRe = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// mapRawUUIDs rewrites the fake's uuids in got to the recorded ones, binding
// new ones by position against want.
func (r *replayer) mapRawUUIDs(got, want string) string {
	wantIdx := uuidRe.FindAllStringIndex(want, -1)
	gotIdx := uuidRe.FindAllStringIndex(got, -1)
	if len(wantIdx) != len(gotIdx) {
		return got
	}
	var b strings.Builder
	last := 0
	for i, gi := range gotIdx {
		a := got[gi[0]:gi[1]]
		w := want[wantIdx[i][0]:wantIdx[i][1]]
		if x, ok := r.uuidRev[a]; ok {
			w = x
		} else if _, taken := r.uuidFwd[w]; !taken {
			r.uuidFwd[w], r.uuidRev[a] = a, w
		} else {
			w = "unbound:" + a
		}
		b.WriteString(got[last:gi[0]])
		b.WriteString(w)
		last = gi[1]
	}
	b.WriteString(got[last:])
	return b.String()
}

// rewrite maps recorded ports, file paths and bound uuids in a request to
// the replay's values.
func (r *replayer) rewrite(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = r.rewrite(e, k)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = r.rewrite(e, key)
		}
		return x
	case string:
		switch key {
		case "trsvcid":
			if n, err := strconv.Atoi(x); err == nil && n > 0 && n < 65536 && strconv.Itoa(n) == x {
				return r.port(x)
			}
			return x // not a port: SPDK refuses it, whatever the port mapping
		case "filename":
			return r.path(x)
		}
		if a, ok := r.uuidFwd[x]; ok {
			return a
		}
		return x
	}
	return v
}

func (r *replayer) port(rec string) string {
	if p, ok := r.ports[rec]; ok {
		return p
	}
	var p string
	if rec == "4429" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			r.t.Fatal(err)
		}
		r.held = append(r.held, ln) // "held by another (non-SPDK) process"
		_, p, _ = net.SplitHostPort(ln.Addr().String())
	} else {
		rp := reserve.ForTest(r.t, "127.0.0.1")
		r.rsv = append(r.rsv, rp)
		for _, rt := range r.targets {
			if err := rt.srv.addReserved(rp, false); err != nil {
				r.t.Fatal(err)
			}
		}
		p = strconv.Itoa(int(rp.Addr().Port()))
	}
	r.ports[rec], r.portRev[p] = p, rec
	return p
}

// makeFile creates the file a scenario's directive asks for, with that
// size, at the replay's path for rec.
func (r *replayer) makeFile(rec string, size int64) {
	p := filepath.Join(r.tmp, filepath.FromSlash(strings.TrimPrefix(rec, "/")))
	if err := createSized(p, size); err != nil {
		r.t.Fatal(err)
	}
	r.paths[rec], r.pathRev[p] = p, rec
}

// createSized creates a sparse file of size bytes, and its directory.
func createSized(p string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func (r *replayer) path(rec string) string {
	if p, ok := r.paths[rec]; ok {
		return p
	}
	p := filepath.Join(r.tmp, filepath.FromSlash(strings.TrimPrefix(rec, "/")))
	if !strings.HasPrefix(rec, "/nonexistent") {
		if err := createSized(p, 256<<20); err != nil {
			r.t.Fatal(err)
		}
	}
	r.paths[rec], r.pathRev[p] = p, rec
	return p
}

// ---- ordered JSON values and the comparer ----

type omap []okv

type okv struct {
	k string
	v any
}

func (m omap) get(k string) any {
	for _, e := range m {
		if e.k == k {
			return e.v
		}
	}
	return nil
}

func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch d := tok.(type) {
	case json.Delim:
		switch d {
		case '{':
			m := omap{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				m = append(m, okv{kt.(string), v})
			}
			_, err := dec.Token()
			return m, err
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeOrdered(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
	case float64:
		return json.Number(fmt.Sprint(d)), nil
	}
	return tok, nil
}

type comparer struct {
	r        *replayer
	fwd, rev map[string]string
	method   string
	diffs    *[]string
}

var nguidRe = regexp.MustCompile(`^[0-9A-F]{32}$`)

const hostUUIDPrefix = "nqn.2014-08.org.nvmexpress:uuid:"

func (c *comparer) add(path, format string, args ...any) {
	if len(*c.diffs) < 8 {
		*c.diffs = append(*c.diffs, path+": "+fmt.Sprintf(format, args...))
	}
}

func hasDupKeys(m omap) bool {
	seen := map[string]bool{}
	for _, e := range m {
		if seen[e.k] {
			return true
		}
		seen[e.k] = true
	}
	return false
}

// firstKeys drops every repeated key of m but its first.
func firstKeys(m omap) omap {
	if !hasDupKeys(m) {
		return m
	}
	seen := map[string]bool{}
	var out omap
	for _, e := range m {
		if !seen[e.k] {
			seen[e.k] = true
			out = append(out, e)
		}
	}
	return out
}

// unstable reports keys whose values differ between runs by nature.
func (c *comparer) unstable(key string) bool {
	switch {
	case key == "ticks", key == "hostid", key == "histogram", strings.HasSuffix(key, "_latency_ticks"):
		return true
	case c.method == "bdev_get_iostat" && (strings.HasPrefix(key, "bytes_") || strings.HasPrefix(key, "num_") || key == "io_error"):
		return true
	}
	return false
}

func (c *comparer) cmp(rec, act any, path string) {
	switch rv := rec.(type) {
	case omap:
		av, ok := act.(omap)
		if !ok {
			c.add(path, "want object %s, got %s", short(rec), short(act))
			return
		}
		if !hasDupKeys(rv) {
			// SPDK writes some keys twice (bdev_raid_get_bdevs' uuid); a
			// recording that went through a JSON parser (the transcripts,
			// rpc.py) kept only the first.
			av = firstKeys(av)
		}
		if keys(rv) != keys(av) {
			c.add(path, "keys %s, got %s", keys(rv), keys(av))
			return
		}
		for i, e := range rv {
			if c.unstable(e.k) {
				continue
			}
			c.cmp(e.v, av[i].v, path+"."+e.k)
		}
	case []any:
		av, ok := act.([]any)
		if !ok || len(av) != len(rv) {
			c.add(path, "want %s, got %s", short(rec), short(act))
			return
		}
		for i := range rv {
			c.cmp(rv[i], av[i], fmt.Sprintf("%s[%d]", path, i))
		}
	case string:
		as, ok := act.(string)
		if !ok {
			c.add(path, "want %q, got %s", rv, short(act))
			return
		}
		if strings.HasSuffix(path, ".trsvcid") {
			if p, ok := c.r.portRev[as]; ok {
				as = p
			}
		}
		if strings.HasSuffix(path, ".filename") {
			if p, ok := c.r.pathRev[as]; ok {
				as = p
			}
		}
		// Paths in messages: the replay's files are the recorded paths
		// under its temporary directory.
		as = strings.ReplaceAll(as, c.r.tmp, "")
		c.cmpString(rv, as, path)
	default:
		if fmt.Sprint(rec) != fmt.Sprint(act) {
			c.add(path, "want %v, got %v", rec, short(act))
		}
	}
}

func (c *comparer) cmpString(rec, act, path string) {
	switch {
	case uuidRe.MatchString(rec) && len(rec) == 36:
		c.bind(rec, act, path)
	case nguidRe.MatchString(rec) && nguidRe.MatchString(act):
		c.bind(nguidToUUID(rec), nguidToUUID(act), path)
	case strings.HasPrefix(rec, hostUUIDPrefix) && strings.HasPrefix(act, hostUUIDPrefix):
		c.bind(strings.TrimPrefix(rec, hostUUIDPrefix), strings.TrimPrefix(act, hostUUIDPrefix), path)
	case rec != act && c.mapUUIDs(act) != rec:
		c.add(path, "want %q, got %q", rec, act)
	}
}

// mapUUIDs replaces the bound uuids inside act (in a message, say) by the
// recorded ones.
func (c *comparer) mapUUIDs(act string) string {
	return uuidRe.ReplaceAllStringFunc(act, func(u string) string {
		if r, ok := c.rev[u]; ok {
			return r
		}
		return u
	})
}

func nguidToUUID(s string) string {
	s = strings.ToLower(s)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

func (c *comparer) bind(rec, act, path string) {
	if a, ok := c.fwd[rec]; ok {
		if a != act {
			c.add(path, "uuid %s is bound to %s, got %s", rec, a, act)
		}
		return
	}
	if rb, ok := c.rev[act]; ok {
		c.add(path, "uuid %s already stands for %s, not %s", act, rb, rec)
		return
	}
	c.fwd[rec], c.rev[act] = act, rec
}

func keys(m omap) string {
	ks := make([]string, len(m))
	for i, e := range m {
		ks[i] = e.k
	}
	return strings.Join(ks, ",")
}

func short(v any) string {
	b, _ := json.Marshal(plain(v))
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func plain(v any) any {
	switch x := v.(type) {
	case omap:
		m := map[string]any{}
		for _, e := range x {
			m[e.k] = plain(e.v)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}
