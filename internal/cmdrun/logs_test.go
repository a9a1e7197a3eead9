package cmdrun

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func TestLogFlags(t *testing.T) {
	var f LogFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f.Register(fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, LogFlags{Level: "info", Format: LogText}, f)
	require.NoError(t, f.Validate())
	require.NoError(t, fs.Parse([]string{"--log-format", "json", "--log-level", "debug"}))
	require.NoError(t, f.Validate())

	var out bytes.Buffer
	f.Logger("vda-x", &out).Named("sub").Debug("node failed", "node", "cn0", "misses", 3)
	var line map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &line), "one JSON object: %s", out.String())
	require.Equal(t, "node failed", line["@message"])
	require.Equal(t, "debug", line["@level"])
	require.Equal(t, "vda-x.sub", line["@module"])
	require.Equal(t, "cn0", line["node"])
	require.EqualValues(t, 3, line["misses"])
	require.Contains(t, line, "@timestamp")

	out.Reset()
	LogFlags{Level: "warn", Format: LogText}.Logger("vda-x", &out).Info("quiet")
	require.Empty(t, out.String(), "below the level")
	LogFlags{Level: "warn", Format: LogText}.Logger("vda-x", &out).Warn("loud", "k", "v")
	require.Contains(t, out.String(), "[WARN]  vda-x: loud: k=v")

	require.ErrorContains(t, LogFlags{Level: "info", Format: "xml"}.Validate(), `--log-format "xml"`)
	require.ErrorContains(t, LogFlags{Level: "loud", Format: LogJSON}.Validate(), `--log-level "loud"`)
}

// Main refuses bad log flags as a usage error and logs in the format asked.
func TestMainLogFormat(t *testing.T) {
	parse := func(f LogFlags) func([]string, io.Writer) (LogFlags, error) {
		return func([]string, io.Writer) (LogFlags, error) { return f, nil }
	}
	same := func(f LogFlags) LogFlags { return f }
	serve := func(_ context.Context, _ LogFlags, log hclog.Logger) error {
		log.Info("serving", "addr", "x")
		return nil
	}
	var stderr bytes.Buffer
	require.Equal(t, ExitUsage, Main(context.Background(), "x", nil, &stderr, parse(LogFlags{Level: "info", Format: "yaml"}), same, serve))
	require.Contains(t, stderr.String(), `x: --log-format "yaml"`)
	stderr.Reset()
	require.Equal(t, ExitOK, Main(context.Background(), "x", nil, &stderr, parse(LogFlags{Level: "info", Format: LogJSON}), same, serve))
	var line map[string]any
	require.NoError(t, json.Unmarshal(stderr.Bytes(), &line), stderr.String())
	require.Equal(t, "serving", line["@message"])
}

func TestNotify(t *testing.T) {
	t.Setenv(EnvNotifySocket, "")
	sent, err := Notify("READY=1")
	require.NoError(t, err)
	require.False(t, sent, "no service manager")

	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	t.Setenv(EnvNotifySocket, path)
	NotifyReady(hclog.NewNullLogger())
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "READY=1", string(buf[:n]))

	// Main says STOPPING=1 once serve returned.
	var stderr bytes.Buffer
	require.Equal(t, ExitOK, Main(context.Background(), "x", nil, &stderr,
		func([]string, io.Writer) (int, error) { return 0, nil },
		func(int) LogFlags { return LogFlags{Level: "info", Format: LogText} },
		func(context.Context, int, hclog.Logger) error { return nil }))
	n, err = conn.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "STOPPING=1", string(buf[:n]))

	// An abstract socket ("@name").
	name := filepath.Join(t.TempDir(), "abstract") // unique; no file is made
	abs, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = abs.Close() })
	t.Setenv(EnvNotifySocket, "@"+name)
	sent, err = Notify("READY=1")
	require.NoError(t, err)
	require.True(t, sent)
	n, err = abs.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "READY=1", string(buf[:n]))

	t.Setenv(EnvNotifySocket, filepath.Join(t.TempDir(), "absent.sock"))
	_, err = Notify("READY=1")
	require.Error(t, err)
}
