package vda_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs enforces the house style: every package has a doc.go
// whose comment starts "Package <name>" (or "Command <name>" for binaries
// and examples).
func TestPackageDocs(t *testing.T) {
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range dirs {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") },
			parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		for name, pkg := range pkgs {
			want := "Package " + name + " "
			if name == "main" {
				want = "Command "
			}
			var doc string
			for fname, f := range pkg.Files {
				if f.Doc != nil && (filepath.Base(fname) == "doc.go" || name == "main") {
					doc = f.Doc.Text()
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "doc.go")); err != nil && name != "main" {
				t.Errorf("%s: package %s has no doc.go", dir, name)
				continue
			}
			if !strings.HasPrefix(doc, want) {
				t.Errorf("%s: package %s: doc comment should start %q, got %q", dir, name, want, firstLine(doc))
			}
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
