package version

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// ErrRequested is what a flag parser returns after --version, so the caller
// prints String and exits 0.
var ErrRequested = errors.New("version requested")

// Info is the build information of a binary. Fields the build did not
// record are empty (VCS fields are absent under -buildvcs=false or outside
// a checkout).
type Info struct {
	Module    string // main module path
	Version   string // module version, "(devel)" for a build from a work tree
	Revision  string // VCS revision
	Time      string // VCS commit time, RFC 3339
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string
}

// Get returns the running binary's build information.
func Get() Info { return fromBuildInfo(debug.ReadBuildInfo()) }

func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	if !ok || bi == nil {
		return Info{Version: "unknown"}
	}
	i := Info{Module: bi.Main.Path, Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if i.Version == "" {
		i.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.Time = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	return i
}

// String is one line: "<module> <version> [revision <rev> [<time>] [modified]] <go version>".
func (i Info) String() string {
	parts := []string{}
	if i.Module != "" {
		parts = append(parts, i.Module)
	}
	parts = append(parts, i.Version)
	if i.Revision != "" {
		parts = append(parts, "revision", i.Revision)
		if i.Time != "" {
			parts = append(parts, i.Time)
		}
		if i.Modified {
			parts = append(parts, "modified")
		}
	}
	if i.GoVersion != "" {
		parts = append(parts, i.GoVersion)
	}
	return strings.Join(parts, " ")
}

// Line is what `<program> --version` prints.
func Line(program string) string { return program + " " + Get().String() }

// Flag registers --version on fs; after fs.Parse, Check turns it into
// ErrRequested.
func Flag(fs *flag.FlagSet) *bool {
	return fs.Bool("version", false, "print the version (module version and VCS revision) and exit")
}

// Check returns ErrRequested if the flag Flag returned was set.
func Check(requested *bool) error {
	if requested != nil && *requested {
		return ErrRequested
	}
	return nil
}

// Print writes Line(program) and a newline to w.
func Print(w io.Writer, program string) {
	fmt.Fprintln(w, Line(program))
}
