package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/devcluster"
)

func TestRunsAndStops(t *testing.T) {
	// run writes the banner before it sends on ready and its last line
	// before it returns: reading after those needs no lock.
	var out, errOut bytes.Buffer
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *devcluster.Cluster, 1)
	code := make(chan int, 1)
	go func() {
		// The default data directory, relative, as the README runs it.
		code <- run(ctx, []string{"--any-ports"}, &out, &errOut, ready)
	}()
	var c *devcluster.Cluster
	select {
	case c = <-ready:
	case n := <-code:
		t.Fatalf("exited %d: %s", n, errOut.String())
	}
	banner := out.String()
	require.Contains(t, banner, "VDA dev cluster running")
	require.Contains(t, banner, "portal   "+c.PortalAddr())
	// Registered (the default): every disk node's PD is an absolute image
	// path and placeable, so the suggested da create works at once.
	require.Contains(t, banner, "pd0 /")
	require.Contains(t, banner, "cluster summary")
	require.Contains(t, banner, "export VDA_TLS_DIR="+c.TLSDir(), "the CLI finds its admin certificate")
	require.FileExists(t, filepath.Join(c.TLSDir(), "admin.crt"))
	sum, err := c.API().Summary(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, sum.PDCount)
	require.Positive(t, sum.FreeBytes)
	require.Contains(t, banner, "Press Ctrl-C to stop.")
	cancel()
	require.Equal(t, 0, <-code, errOut.String())
	require.True(t, strings.HasSuffix(out.String(), "vda-dev: stopped\n"))
}

func TestBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), []string{"--dns", "-1", "--data-dir", t.TempDir()}, &out, &errOut, nil))
	require.Equal(t, 2, run(context.Background(), []string{"extra"}, &out, &errOut, nil))
	require.Equal(t, 2, run(context.Background(), []string{"--no-such-flag"}, &out, &errOut, nil))
	errOut.Reset()
	require.Equal(t, 2, run(context.Background(), []string{"--log-format", "xml"}, &out, &errOut, nil))
	require.Contains(t, errOut.String(), `--log-format "xml"`)
	require.Equal(t, 0, run(context.Background(), []string{"--help"}, &out, &errOut, nil))
}

func TestInsecureBanner(t *testing.T) {
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *devcluster.Cluster, 1)
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--any-ports", "--insecure", "--data-dir", t.TempDir()}, &out, &errOut, ready)
	}()
	select {
	case c := <-ready:
		require.Empty(t, c.TLSDir())
	case n := <-code:
		t.Fatalf("exited %d: %s", n, errOut.String())
	}
	banner := out.String()
	require.NotContains(t, banner, "VDA_TLS_DIR")
	require.Contains(t, banner, " --insecure cluster summary")
	cancel()
	require.Equal(t, 0, <-code, errOut.String())
}
