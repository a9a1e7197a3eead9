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
	}
	for pkg, banned := range rules {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s links %s (nothing under %s may be linked)", pkg, dep, b)
				}
			}
		}
	}
}
