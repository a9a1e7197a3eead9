package version

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFromBuildInfo(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want Info
		line string
	}{
		{"no build info", nil, false, Info{Version: "unknown"}, "unknown"},
		{"work tree without vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/vda-io/vda"}}, true,
			Info{Module: "github.com/vda-io/vda", Version: "(devel)", GoVersion: "go1.26.8"},
			"github.com/vda-io/vda (devel) go1.26.8"},
		{"released, clean", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/vda-io/vda", Version: "v1.2.3"},
			Settings: settings("vcs", "git", "vcs.revision", "abc123", "vcs.time", "2026-12-07T02:00:00Z", "vcs.modified", "false")}, true,
			Info{Module: "github.com/vda-io/vda", Version: "v1.2.3", Revision: "abc123", Time: "2026-12-07T02:00:00Z", GoVersion: "go1.26.8"},
			"github.com/vda-io/vda v1.2.3 revision abc123 2026-12-07T02:00:00Z go1.26.8"},
		{"modified", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "m", Version: "(devel)"},
			Settings: settings("vcs.revision", "def", "vcs.modified", "true")}, true,
			Info{Module: "m", Version: "(devel)", Revision: "def", Modified: true, GoVersion: "go1.26.8"},
			"m (devel) revision def modified go1.26.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuildInfo(tc.bi, tc.ok)
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.line, got.String())
		})
	}
}

func TestGetInTestBinary(t *testing.T) {
	// A test binary has build info whose main module is this one.
	i := Get()
	require.NotEmpty(t, i.GoVersion)
	require.True(t, strings.HasPrefix(Line("vda-x"), "vda-x "), Line("vda-x"))
}

func TestFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := Flag(fs)
	require.NoError(t, fs.Parse(nil))
	require.NoError(t, Check(v))
	require.NoError(t, fs.Parse([]string{"--version"}))
	require.True(t, errors.Is(Check(v), ErrRequested))
	require.NoError(t, Check(nil))
	var b bytes.Buffer
	Print(&b, "vda-y")
	require.True(t, strings.HasPrefix(b.String(), "vda-y "))
	require.True(t, strings.HasSuffix(b.String(), "\n"))
}
