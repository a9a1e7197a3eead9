package spdktest

// Differential testing against real SPDK.
//
// testdata/diff/scenarios/*.jsonl are request sequences, one topic per file,
// in the transcripts' format without responses:
//
//	{"target": "A", "request": {"method": "bdev_malloc_create", "params": {...}}}
//
// A request without "jsonrpc" and "id" gets both (ids count per connection
// from 1); one that has either is sent byte for byte as written. Besides
// notes, a scenario has directives: {"file": "/aio/f", "size": 1000}
// creates a sparse file (other "filename"s are 256 MiB files, except under
// /nonexistent); {"sleep_ms": N} waits; {"note": "kill -9 of target B",
// "killed_pid": 1} kills a target (it restarts on its next request, with
// --wait-for-rpc when framework_start_init follows); {"target": "X",
// "request_raw": "..."} sends bytes on a fresh connection. Every target
// starts fresh as a user would start spdk_tgt (auto-examine on), in a
// network namespace of its own recording, so the scenarios' ports are
// used as written.
//
// testdata/diff/*.jsonl are real SPDK v24.01's answers to them, in the
// transcripts' format. TestDifferential replays them against fresh fakes
// with replay_test.go's rules (no SPDK needed) and fails on any difference
// that testdata/KNOWN_DIFFERENCES.md does not list. With VDA_SPDK_DIR set:
//
//	VDA_SPDK_DIFF=1    records every scenario from real spdk_tgt into a
//	                   temporary directory and replays that: the live
//	                   differential run.
//	VDA_SPDK_RECORD=1  records into testdata/diff (scripts/spdk-record).
//	VDA_SPDK_ONLY=raid restricts either to scenarios whose name contains it.
//
// A request on which real SPDK closed the connection (crashed) is recorded
// with "response": null and "connection_closed": true; the fake must then
// close the connection too.

import (
	"bytes"
	"context"
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

	"github.com/vda-io/vda/internal/netnstest"
	"github.com/vda-io/vda/internal/spdkproc"
)

const diffDir = "testdata/diff"

func TestDifferential(t *testing.T) {
	dir := diffDir
	only := os.Getenv("VDA_SPDK_ONLY")
	live, record := os.Getenv("VDA_SPDK_DIFF") == "1", os.Getenv("VDA_SPDK_RECORD") == "1"
	if live || record {
		spdkDir := spdkproc.Require(t)
		if err := netnstest.Available(); err != nil {
			t.Skipf("recording needs network namespaces: %v", err)
		}
		if live {
			dir = t.TempDir()
		}
		scenarios, err := filepath.Glob(filepath.Join(diffDir, "scenarios", "*.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(scenarios)
		for _, f := range scenarios {
			if !strings.Contains(filepath.Base(f), only) {
				continue
			}
			t.Run("record/"+strings.TrimSuffix(filepath.Base(f), ".jsonl"), func(t *testing.T) {
				recordScenario(t, spdkDir, f, filepath.Join(dir, filepath.Base(f)))
			})
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	known := loadKnownDifferences(t)
	var summary []string
	for _, f := range files {
		name := filepath.Base(f)
		if !strings.Contains(name, only) {
			continue
		}
		t.Run("replay/"+strings.TrimSuffix(name, ".jsonl"), func(t *testing.T) {
			diffs, replayed := replayLines(t, loadRecording(t, f), known)
			reportDiffs(t, diffs, known, name+"|")
			summary = append(summary, fmt.Sprintf("%-28s %4d exchanges %3d differences (each listed or failed)", name, replayed, len(diffs)))
		})
	}
	t.Logf("differential replay:\n%s", strings.Join(summary, "\n"))
}

// ---- recording from real SPDK ----

type realTarget struct {
	tg     *spdkproc.Target
	conn   net.Conn
	dec    *json.Decoder
	nextID int
}

type recorder struct {
	t       *testing.T
	spdk    string
	host    *netnstest.Host
	sock    string // a short directory for the RPC sockets
	tmp     string // the scenario's files live under it
	lines   []*recLine
	raw     [][]byte // the scenario's lines as written
	pos     int
	targets map[string]*realTarget
	labels  int
	made    map[string]bool
	out     bytes.Buffer
}

// recordScenario runs one scenario against real spdk_tgt processes and
// writes what they answered to out.
func recordScenario(t *testing.T, spdkDir, scenario, out string) {
	sock, err := os.MkdirTemp("", "vdadiff")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sock) })
	r := &recorder{t: t, spdk: spdkDir, sock: sock, tmp: t.TempDir(),
		host: netnstest.New(t).AddHost("spdk", "10.250.0.1/24"), targets: map[string]*realTarget{},
		made: map[string]bool{}}
	data, err := os.ReadFile(scenario)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			r.raw = append(r.raw, line)
		}
	}
	r.lines = loadRecording(t, scenario)
	for r.pos = 0; r.pos < len(r.lines); r.pos++ {
		l := r.lines[r.pos]
		switch {
		case l.Request == nil && l.RequestRaw == nil:
			r.directive(l)
		case l.RequestRaw != nil:
			r.rawExchange(l)
		default:
			r.pair(l)
		}
	}
	for label, rt := range r.targets {
		if err := rt.tg.Crashed(); err != nil && !rt.tg.Requested() {
			t.Logf("target %s: %v", label, err)
		}
	}
	if err := os.WriteFile(out, r.out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r *recorder) emit(v ...[]byte) {
	for _, b := range v {
		r.out.Write(b)
	}
	r.out.WriteByte('\n')
}

func (r *recorder) directive(l *recLine) {
	raw := r.raw[r.pos]
	switch {
	case l.KilledPID != 0:
		m := killedLabel.FindStringSubmatch(l.Note)
		if m == nil || r.targets[m[1]] == nil {
			r.t.Fatalf("%s:%d: cannot tell which running target the note kills: %q", l.file, l.lineNo, l.Note)
		}
		rt := r.targets[m[1]]
		r.drop(rt)
		pid := rt.tg.PID()
		_ = rt.tg.Kill()
		raw = regexp.MustCompile(`"killed_pid"\s*:\s*\d+`).ReplaceAll(raw, []byte(`"killed_pid": `+strconv.Itoa(pid)))
	case l.File != "":
		if err := createSized(filepath.Join(r.tmp, l.File), l.Size); err != nil {
			r.t.Fatal(err)
		}
		r.made[l.File] = true
	case l.SleepMS > 0:
		time.Sleep(time.Duration(l.SleepMS) * time.Millisecond)
	}
	r.emit(raw)
}

// waitForRPC: the label's next requests include framework_start_init.
func (r *recorder) waitForRPC(label string) bool { return startsWaiting(r.lines[r.pos:], label) }

func (r *recorder) target(label string) *realTarget {
	rt := r.targets[label]
	if rt != nil && rt.tg.Exited() {
		r.drop(rt)
		rt = nil
	}
	if rt == nil {
		mask := "0x1"
		if r.labels%2 == 1 {
			mask = "0x2"
		}
		r.labels++
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		tg, err := spdkproc.Start(ctx, spdkproc.Config{Dir: r.spdk, Name: "spdk_tgt " + label,
			Socket: filepath.Join(r.sock, label+".sock"), LogPath: filepath.Join(r.tmp, label+"-"+strconv.Itoa(r.pos)+".log"),
			CPUMask: mask, Command: r.host.Command, Bare: true, WaitForRPC: r.waitForRPC(label),
			StopTimeout: 20 * time.Second})
		if err != nil {
			r.t.Fatal(err)
		}
		r.t.Cleanup(func() { _ = tg.Kill() })
		rt = &realTarget{tg: tg}
		r.targets[label] = rt
	}
	if rt.conn == nil {
		c, err := net.Dial("unix", rt.tg.Socket())
		if err != nil {
			r.t.Fatalf("dial %s: %v", label, err)
		}
		rt.conn, rt.dec, rt.nextID = c, json.NewDecoder(c), 1
	}
	return rt
}

func (r *recorder) drop(rt *realTarget) {
	if rt.conn != nil {
		_ = rt.conn.Close()
		rt.conn, rt.dec = nil, nil
	}
}

var filenameRe = regexp.MustCompile(`("filename"\s*:\s*")([^"]*)(")`)

// toReal maps the scenario's file names into the recording's directory,
// creating the files.
func (r *recorder) toReal(req []byte) []byte {
	return filenameRe.ReplaceAllFunc(req, func(m []byte) []byte {
		sub := filenameRe.FindSubmatch(m)
		name := string(sub[2])
		if !r.made[name] && !strings.HasPrefix(name, "/nonexistent") {
			if err := createSized(filepath.Join(r.tmp, name), 256<<20); err != nil {
				r.t.Fatal(err)
			}
			r.made[name] = true
		}
		return []byte(string(sub[1]) + r.tmp + name + string(sub[3]))
	})
}

// fromReal maps the recording's directory out of a response.
func (r *recorder) fromReal(resp []byte) []byte { return bytes.ReplaceAll(resp, []byte(r.tmp), nil) }

// request returns the bytes to record for l (with jsonrpc and id added
// when the scenario left both out).
func (r *recorder) request(l *recLine, rt *realTarget) []byte {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(l.Request, &probe); err != nil {
		return compact(l.Request)
	}
	if _, ok := probe["id"]; ok {
		return compact(l.Request)
	}
	if _, ok := probe["jsonrpc"]; ok {
		return compact(l.Request)
	}
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc": "2.0", "method": `)
	b.Write(probe["method"])
	b.WriteString(`, "id": ` + strconv.Itoa(rt.nextID))
	rt.nextID++
	if p, ok := probe["params"]; ok {
		b.WriteString(`, "params": `)
		b.Write(compact(p))
	}
	b.WriteString("}")
	return b.Bytes()
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}

func (r *recorder) pair(l *recLine) {
	rt := r.target(l.Target)
	req := r.request(l, rt)
	// The recorded id is the one sent: re-derive method and id for the
	// replay's keys from the bytes written.
	_ = rt.conn.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := rt.conn.Write(r.toReal(req)); err != nil {
		r.t.Fatalf("%s:%d: write to %s: %v", l.file, l.lineNo, l.Target, err)
	}
	var resp json.RawMessage
	err := rt.dec.Decode(&resp)
	label, _ := json.Marshal(l.Target)
	if err != nil {
		r.t.Logf("%s:%d: %s closed the connection: %v", l.file, l.lineNo, l.Target, err)
		r.drop(rt)
		// A crash: let the process finish dying, so that the label's next
		// request starts a fresh target instead of dialling the dead one.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = rt.tg.Wait(ctx)
		r.emit([]byte(`{"target": `), label, []byte(`, "request": `), req, []byte(`, "response": null, "connection_closed": true}`))
		return
	}
	r.emit([]byte(`{"target": `), label, []byte(`, "request": `), req, []byte(`, "response": `), r.fromReal(resp), []byte(`}`))
	if strings.Contains(string(req), `"spdk_kill_instance"`) && strings.Contains(string(resp), `"result": true`) {
		r.drop(rt)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = rt.tg.Wait(ctx)
	}
}

// rawExchange sends the scenario's bytes on a fresh connection and records
// everything that comes back until the target closes it or falls silent.
func (r *recorder) rawExchange(l *recLine) {
	rt := r.target(l.Target)
	c, err := net.Dial("unix", rt.tg.Socket())
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, string(r.toReal([]byte(*l.RequestRaw)))); err != nil {
		r.t.Fatal(err)
	}
	var got []byte
	closed := false
	buf := make([]byte, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			closed = true
			break
		}
	}
	got = r.fromReal(got)
	var first any = nil
	dec := json.NewDecoder(bytes.NewReader(got))
	var v json.RawMessage
	if dec.Decode(&v) == nil {
		first = v
	}
	line := map[string]any{"target": l.Target, "request": l.Request, "request_raw": *l.RequestRaw,
		"response": first, "response_raw": string(got), "connection_closed": closed}
	if l.Request == nil {
		line["request"] = nil
	}
	b, err := json.Marshal(line)
	if err != nil {
		r.t.Fatal(err)
	}
	r.emit(b)
}

// TestFreshSeeds measures how the fake generalizes beyond the committed
// recordings: every generated topic is drawn again with its seed moved by
// VDA_SPDK_FRESH, recorded from real spdk_tgt, replayed against the fake,
// and the share of identical answers (after the replay's normalization) is
// reported per topic. It fails below 95 % overall, the fidelity bar.
//
//	VDA_SPDK_DIR=... VDA_SPDK_FRESH=1000 go test -run TestFreshSeeds -v ./spdk/spdktest
func TestFreshSeeds(t *testing.T) {
	off, err := strconv.ParseInt(os.Getenv("VDA_SPDK_FRESH"), 10, 64)
	if err != nil {
		t.Skip("set VDA_SPDK_FRESH to a seed offset (and VDA_SPDK_DIR) to measure the fake on fresh generated sequences")
	}
	spdkDir := spdkproc.Require(t)
	if err := netnstest.Available(); err != nil {
		t.Skipf("recording needs network namespaces: %v", err)
	}
	names := make([]string, 0, len(genTopics))
	for n := range genTopics {
		names = append(names, n)
	}
	sort.Strings(names)
	scen, rec := t.TempDir(), t.TempDir()
	var total, same int
	var rows []string
	for _, n := range names {
		g := genTopics[n]
		g.Seed += off
		f := filepath.Join(scen, "fresh_"+n+".jsonl")
		if err := os.WriteFile(f, g.generate(), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(rec, filepath.Base(f))
		t.Run(n, func(t *testing.T) {
			recordScenario(t, spdkDir, f, out)
			diffs, replayed := replayLines(t, loadRecording(t, out), map[string]bool{})
			for i, d := range diffs {
				if i < 5 {
					t.Logf("%s id=%s %s: %s", d.target, d.id, d.method, d.detail)
				}
			}
			total += replayed
			same += replayed - len(diffs)
			rows = append(rows, fmt.Sprintf("%-16s %4d exchanges %4d identical (%.1f %%)", n, replayed, replayed-len(diffs),
				100*float64(replayed-len(diffs))/float64(max(replayed, 1))))
		})
	}
	share := 100 * float64(same) / float64(max(total, 1))
	t.Logf("fresh seeds (+%d):\n%s\noverall %d/%d identical (%.1f %%)", off, strings.Join(rows, "\n"), same, total, share)
	if share < 95 {
		t.Errorf("the fake answers %.1f %% of fresh sequences as real SPDK does; the bar is 95 %%", share)
	}
}
