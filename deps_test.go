package vda_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeanImports keeps each package's links to what it uses: an embedder
// who imports one store backend gets that backend's dependencies only.
// Each entry is a package and import path prefixes it must not link.
func TestLeanImports(t *testing.T) {
	for _, c := range []struct {
		dep, prefix string
		want        bool
	}{{"testing", "testing", true}, {"testing/quick", "testing", true}, {"testingx", "testing", false},
		{"go.etcd.io/etcd/server/v3", "go.etcd.io/", true}, {"github.com/jackc/pgx/v5", "github.com/jackc/pgx", true}} {
		if under(c.dep, c.prefix) != c.want {
			t.Fatalf("under(%q, %q) != %v", c.dep, c.prefix, c.want)
		}
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go command: ", err)
	}
	rules := map[string][]string{
		"./store/etcdstore":         {"go.etcd.io/etcd/server/", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "modernc.org/sqlite"},
		"./store/memstore":          {"go.etcd.io/", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "modernc.org/sqlite"},
		"./store/sqlstore":          {"go.etcd.io/", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "modernc.org/sqlite"},
		"./store/sqlstore/postgres": {"go.etcd.io/", "github.com/go-sql-driver/mysql", "modernc.org/sqlite"},
		"./store/sqlstore/mysql":    {"go.etcd.io/", "github.com/jackc/pgx", "modernc.org/sqlite"},
		"./store/sqlstore/sqlite":   {"go.etcd.io/", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql"},
		"./store":                   {"go.etcd.io/", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "modernc.org/sqlite"},
		"github.com/vda-io/vda":     {"go.etcd.io/etcd/server/", "github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "modernc.org/sqlite"},
		"./store/etcdembed":         {"github.com/jackc/pgx", "github.com/go-sql-driver/mysql", "modernc.org/sqlite"},
		"./failover":                {"go.etcd.io/", "google.golang.org/grpc"},
		"./alloc":                   {"go.etcd.io/", "google.golang.org/grpc"},
		// The production binaries link no test fake and no testing.
		// The agent also links no control plane (its metrics are agentmetrics).
		"./cmd/vda-agent": {"github.com/vda-io/vda/spdk/spdktest", "testing", "github.com/vda-io/vda/portal",
			"github.com/vda-io/vda/monitor", "github.com/vda-io/vda/store", "go.etcd.io/"},
		"./cmd/vda-portal":  {"github.com/vda-io/vda/spdk/spdktest", "testing"},
		"./cmd/vda-monitor": {"github.com/vda-io/vda/spdk/spdktest", "testing"},
		"./cmd/vda-db":      {"github.com/vda-io/vda/spdk/spdktest", "testing"},
		"./cmd/vda":         {"github.com/vda-io/vda/spdk/spdktest", "testing"},
		// The host tool speaks the fake's fabric as a host, without the
		// fake target's test plumbing.
		"./cmd/vda-host": {"github.com/vda-io/vda/spdk/spdktest/reserve", "testing"},
		// The fake itself runs in programs (vda-fakespdk, vda-dev).
		"./spdk/spdktest": {"testing"},
		"./devcluster":    {"testing"},
	}
	for pkg, banned := range rules {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if under(dep, b) {
					t.Errorf("%s links %s (nothing under %s may be linked)", pkg, dep, b)
				}
			}
		}
	}
}

// under reports whether package path dep is prefix or inside it ("x/y" is
// under "x/y" and "x/y/z", not "x/yz"; a prefix ending in "/" matches any
// path it starts).
func under(dep, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(dep, prefix)
	}
	return dep == prefix || strings.HasPrefix(dep, prefix+"/")
}
