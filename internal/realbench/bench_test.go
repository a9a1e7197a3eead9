package realbench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vda-io/vda/agent"
	"github.com/vda-io/vda/internal/rpcmeter"
)

// envInt reads a positive integer from the environment, or def.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		b.Fatalf("%s=%q is not a positive integer", name, s)
	}
	return v
}

// phase is one timed sync of a node, and the RPCs it sent.
type phase struct {
	d      time.Duration
	counts map[string]int
	stats  map[string]rpcmeter.Stat
	rpcs   int
}

// timedSync times sync of n, tried up to tries times: a sync that leaves
// objects failing is followed by another, as the monitor would follow it
// (on this shared machine one of 1,000 NVMe/TCP connects now and then
// misses SPDK's fixed 2 s icresp timeout). The phase holds the time and
// RPCs of every try.
func timedSync(b *testing.B, n *Node, tries int, sync func(context.Context) error) phase {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	n.Meter.Reset()
	start := time.Now()
	for try := 1; ; try++ {
		err := sync(ctx)
		if err == nil {
			break
		}
		if try >= tries || ctx.Err() != nil {
			b.Fatalf("%s sync: %v%s", n.Role, err, n.env.Tails())
		}
		msg := err.Error()
		if len(msg) > 400 {
			msg = msg[:400] + "..."
		}
		b.Logf("%s sync %d of at most %d left objects failing, syncing again: %s", n.Role, try, tries, msg)
	}
	p := phase{d: time.Since(start), counts: n.Meter.Counts(), stats: n.Meter.Stats()}
	p.rpcs = n.Meter.Total()
	if err := n.Crashed(); err != nil {
		b.Fatal(err)
	}
	return p
}

// buildTries bounds the syncs of a build from empty (timedSync).
const buildTries = 3

// buildAndResync syncs n from empty, then again unchanged, and checks that
// the second sync only read.
func buildAndResync(b *testing.B, what string, n *Node, sync func(context.Context) error) (build, resync phase) {
	b.Helper()
	build = timedSync(b, n, buildTries, sync)
	resync = timedSync(b, n, 1, sync)
	b.Logf("%s: build %v (%d RPCs): %s", what, build.d, build.rpcs, FormatStats(build.stats))
	b.Logf("%s: no-op resync %v (%d RPCs: %s)", what, resync.d, resync.rpcs, FormatCounts(resync.counts))
	if err := CheckReadOnly(resync.counts); err != nil {
		b.Errorf("%s: %v", what, err)
	}
	return build, resync
}

// BenchmarkNodeSync measures, on real spdk_tgt, a disk node with
// VDA_REALBENCH_DAS*2 VDs (default 500 arrays: 1,000 VDs) and a controller
// node with VDA_REALBENCH_DAS arrays built from empty and resynced
// unchanged, each beside the same agent whose SPDK connection passes one
// call at a time (an rpcmeter.Proxy in Serial mode): the same RPCs, each
// waiting for the answer to the one before. Every variant starts from a
// fresh spdk_tgt; the controller node's arrays are initialized (their
// lvstores made by a first, untimed controller node), as after a restart
// of the node. Run it with -benchtime 1x (see docs/BENCHMARKS.md).
func BenchmarkNodeSync(b *testing.B) {
	das := envInt(b, "VDA_REALBENCH_DAS", 500)
	dnMem := envInt(b, "VDA_REALBENCH_DN_MEM_MB", 12288)
	cnMem := envInt(b, "VDA_REALBENCH_CN_MEM_MB", 4096)
	// VDA_REALBENCH_CN_ADMINQ_US: the controller nodes' admin queue poll
	// period (bdev_nvme_set_options; SPDK's default 10,000 if unset).
	cnAdminq := uint64(envInt(b, "VDA_REALBENCH_CN_ADMINQ_US", 10_000))
	dnInFlight := envInt(b, "VDA_REALBENCH_DN_INFLIGHT", agent.DefaultMaxInFlight)
	only := os.Getenv("VDA_REALBENCH_ONLY")
	if only != "" && only != "dn" && only != "cn" {
		b.Fatalf("VDA_REALBENCH_ONLY=%q is not dn or cn", only)
	}
	baseline := os.Getenv("VDA_REALBENCH_BASELINE") != "0"
	// VDA_REALBENCH_EACH=0 skips the object-at-a-time reads (about 2
	// minutes of a controller node's run), for runs that compare builds.
	readEach := os.Getenv("VDA_REALBENCH_EACH") != "0"
	e := New(b)
	var m struct {
		dn, dnSerial, dnRe, dnReSerial, dnEach, cnInit, cn, cnSerial, cnRe, cnReSerial, cnEach phase
	}
	each := func(what string, n *Node, l Layout) phase {
		if !readEach {
			return phase{}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		d, counts, err := n.ReadEachObject(ctx, l)
		if err != nil {
			b.Fatalf("%s: reading each object: %v", what, err)
		}
		p := phase{d: d, counts: counts}
		for _, c := range counts {
			p.rpcs += c
		}
		b.Logf("%s: each object read one at a time %v (%d RPCs: %s)", what, d, p.rpcs, FormatCounts(counts))
		return p
	}
	add := func(dst *phase, p phase) {
		dst.d += p.d
		dst.rpcs += p.rpcs
	}
	b.StopTimer()
	for range b.N {
		l := NewLayout(das, 2, e.Listener("dn"))
		syncDN := func(n *Node) func(context.Context) error {
			return func(ctx context.Context) error { return n.SyncDN(ctx, l.DN) }
		}
		syncCN := func(n *Node) func(context.Context) error {
			return func(ctx context.Context) error { return n.SyncCN(ctx, l.CN) }
		}

		var dn *Node
		if only != "cn" {
			dn = e.StartNode(NodeConfig{Role: agent.RoleDN, MemMB: dnMem, MaxInFlight: dnInFlight})
			p, r := buildAndResync(b, "disk node", dn, syncDN(dn))
			add(&m.dn, p)
			add(&m.dnRe, r)
			add(&m.dnEach, each("disk node", dn, l))
			if baseline {
				dn.Stop()
				dn = e.StartNode(NodeConfig{Role: agent.RoleDN, MemMB: dnMem, MaxInFlight: dnInFlight, Serial: true})
				p, r = buildAndResync(b, "disk node, one call at a time", dn, syncDN(dn))
				add(&m.dnSerial, p)
				add(&m.dnReSerial, r)
			}
		} else {
			dn = e.StartNode(NodeConfig{Role: agent.RoleDN, MemMB: dnMem, MaxInFlight: dnInFlight})
			timedSync(b, dn, buildTries, syncDN(dn))
		}
		if only == "dn" {
			dn.Stop()
			continue
		}

		// The arrays' lvstores, made once on the disk node's VDs.
		cn := e.StartNode(NodeConfig{Role: agent.RoleCN, MemMB: cnMem, AdminqPollUS: cnAdminq})
		add(&m.cnInit, timedSync(b, cn, buildTries, func(ctx context.Context) error { return cn.CreateArrays(ctx, l.CN) }))
		b.Logf("controller node, arrays created: %v", m.cnInit.d)
		cn.Stop()
		l.SetInitialized()

		cn = e.StartNode(NodeConfig{Role: agent.RoleCN, MemMB: cnMem, AdminqPollUS: cnAdminq})
		p, r := buildAndResync(b, "controller node", cn, syncCN(cn))
		add(&m.cn, p)
		add(&m.cnRe, r)
		add(&m.cnEach, each("controller node", cn, l))
		cn.Stop()
		if baseline {
			cn = e.StartNode(NodeConfig{Role: agent.RoleCN, MemMB: cnMem, AdminqPollUS: cnAdminq, Serial: true})
			p, r = buildAndResync(b, "controller node, one call at a time", cn, syncCN(cn))
			add(&m.cnSerial, p)
			add(&m.cnReSerial, r)
			cn.Stop()
		}
		if err := dn.Crashed(); err != nil {
			b.Fatal(err)
		}
		dn.Stop()
	}
	b.StartTimer()
	n := float64(b.N)
	sec := func(p phase) float64 { return p.d.Seconds() / n }
	ms := func(p phase) float64 { return float64(p.d.Milliseconds()) / n }
	report := func(role string, build, buildSerial, re, reSerial, each phase) {
		b.ReportMetric(sec(build), role+"-build-s")
		if baseline {
			b.ReportMetric(sec(buildSerial), role+"-build-serial-s")
			b.ReportMetric(sec(buildSerial)/sec(build), role+"-build-x")
		}
		b.ReportMetric(ms(re), role+"-resync-ms")
		if baseline {
			b.ReportMetric(ms(reSerial), role+"-resync-serial-ms")
			b.ReportMetric(sec(reSerial)/sec(re), role+"-resync-x")
		}
		b.ReportMetric(float64(re.rpcs)/n, role+"-resync-rpcs")
		if readEach {
			b.ReportMetric(ms(each), role+"-each-ms")
			b.ReportMetric(sec(each)/sec(re), role+"-resync-each-x")
		}
	}
	if only != "cn" {
		report("dn", m.dn, m.dnSerial, m.dnRe, m.dnReSerial, m.dnEach)
	}
	if only != "dn" {
		b.ReportMetric(sec(m.cnInit), "cn-create-s")
		report("cn", m.cn, m.cnSerial, m.cnRe, m.cnReSerial, m.cnEach)
	}
	b.ReportMetric(0, "ns/op")
}
