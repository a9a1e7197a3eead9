package cmdrun

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func TestMainExitCodes(t *testing.T) {
	level := func(string) LogFlags { return LogFlags{Level: "info", Format: LogText} }
	serveOK := func(context.Context, string, hclog.Logger) error { return nil }
	parse := func(err error) func([]string, io.Writer) (string, error) {
		return func([]string, io.Writer) (string, error) { return "cfg", err }
	}
	var stderr bytes.Buffer
	ctx := context.Background()
	require.Equal(t, ExitOK, Main(ctx, "x", nil, &stderr, parse(nil), level, serveOK))
	require.Equal(t, ExitOK, Main(ctx, "x", nil, &stderr, parse(flag.ErrHelp), level, serveOK))
	require.Equal(t, ExitUsage, Main(ctx, "x", nil, &stderr, parse(errors.New("bad flag")), level, serveOK))
	require.Contains(t, stderr.String(), "x: bad flag")
	stderr.Reset()
	require.Equal(t, ExitFailure, Main(ctx, "x", nil, &stderr, parse(nil), level,
		func(_ context.Context, cfg string, log hclog.Logger) error {
			require.Equal(t, "cfg", cfg)
			return errors.New("disk on fire")
		}))
	require.Contains(t, stderr.String(), "disk on fire")
}

func TestTogether(t *testing.T) {
	boom := errors.New("boom")
	stopped := make(chan struct{})
	err := Together(context.Background(),
		func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil },
		func(context.Context) error { return boom })
	require.ErrorIs(t, err, boom)
	select {
	case <-stopped:
	default:
		t.Fatal("Together returned before the other function did")
	}
	require.NoError(t, Together(context.Background(), func(context.Context) error { return nil }))
}
