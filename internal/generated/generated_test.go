package generated_test

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vda-io/vda/internal/generated"
)

const root = "../.."

// TestProtosAreCurrent regenerates every api/*/*.proto and compares the
// result with the committed files.
func TestProtosAreCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		if os.Getenv(generated.EnvRequire) == "1" {
			t.Fatalf("protoc is missing and %s=1: %v", generated.EnvRequire, err)
		}
		t.Skipf("needs protoc (apt-get install protobuf-compiler; scripts/test does): %v", err)
	}
	ctx := context.Background()
	bin := t.TempDir()
	if err := generated.Plugins(ctx, bin); err != nil {
		t.Fatal(err)
	}
	protos, err := filepath.Glob(filepath.Join(root, "api", "*", "*.proto"))
	if err != nil || len(protos) == 0 {
		t.Fatalf("no protos: %v", err)
	}
	for _, p := range protos {
		out := t.TempDir()
		dir, file := filepath.Split(p)
		if err := generated.Protos(ctx, bin, dir, file, out); err != nil {
			t.Fatal(err)
		}
		made, err := filepath.Glob(filepath.Join(out, "*.go"))
		if err != nil || len(made) == 0 {
			t.Fatalf("%s: protoc made nothing: %v", p, err)
		}
		for _, m := range made {
			compare(t, filepath.Join(dir, filepath.Base(m)), m, "go generate ./"+filepath.Dir(strings.TrimPrefix(p, root+"/")))
		}
	}
}

// TestMocksAreCurrent runs every "//go:generate go tool mockgen" line of
// the repository into a temporary file and compares it with the committed
// one.
func TestMocksAreCurrent(t *testing.T) {
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			args, ok := strings.CutPrefix(sc.Text(), "//go:generate go tool mockgen ")
			if !ok {
				continue
			}
			n++
			checkMock(t, filepath.Dir(path), strings.Fields(args))
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("found no mockgen directive: the walk is broken")
	}
}

func checkMock(t *testing.T, dir string, args []string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "mock.go")
	dest := ""
	for i := range args {
		if args[i] == "-destination" && i+1 < len(args) {
			dest, args[i+1] = args[i+1], tmp
		}
	}
	if dest == "" {
		t.Fatalf("%s: mockgen directive without -destination", dir)
	}
	cmd := exec.Command("go", append([]string{"tool", "mockgen"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: mockgen: %v\n%s", dir, err, out)
	}
	got, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	// The header quotes the command line, destination included.
	fixed := filepath.Join(t.TempDir(), "fixed.go")
	if err := os.WriteFile(fixed, bytes.ReplaceAll(got, []byte(tmp), []byte(dest)), 0o644); err != nil {
		t.Fatal(err)
	}
	compare(t, filepath.Join(dir, dest), fixed, "go generate ./"+strings.TrimPrefix(dir, root+"/"))
}

func compare(t *testing.T, committed, fresh, how string) {
	t.Helper()
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(committed)
	if err != nil {
		t.Fatalf("%s: %v (run %s)", committed, err, how)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what its generator makes now: run %s and commit the result", committed, how)
	}
}
