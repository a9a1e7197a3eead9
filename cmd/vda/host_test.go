package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/spdk"
	"github.com/vda-io/vda/spdk/spdktest"
)

const (
	hostTestNQN  = "nqn.2016-06.io.spdk:vda-exp-da0-exp0"
	hostTestHost = "nqn.2016-06.io.spdk:host0"
)

// exportMalloc serves a 16 MiB malloc bdev from a fake SPDK to
// hostTestHost on a loopback port and returns the path.
func exportMalloc(t *testing.T) string {
	t.Helper()
	srv := spdktest.NewServer(t)
	c, err := spdk.New(srv.SockPath())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	trid, err := srv.Reserve("127.0.0.1")
	require.NoError(t, err)
	port := trid.TrSvcID
	ctx := context.Background()
	steps := []struct {
		method string
		params any
	}{
		{"nvmf_create_transport", map[string]any{"trtype": "TCP"}},
		{"bdev_malloc_create", map[string]any{"name": "m0", "block_size": 4096, "num_blocks": 4096}},
		{"nvmf_create_subsystem", map[string]any{"nqn": hostTestNQN, "serial_number": "SN1", "model_number": "VDA_CONTROLLER"}},
		{"nvmf_subsystem_add_ns", map[string]any{"nqn": hostTestNQN, "namespace": map[string]any{"bdev_name": "m0"}}},
		{"nvmf_subsystem_add_listener", map[string]any{"nqn": hostTestNQN, "listen_address": map[string]any{
			"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1", "trsvcid": port}}},
		{"nvmf_subsystem_add_host", map[string]any{"nqn": hostTestNQN, "host": hostTestHost}},
	}
	for _, s := range steps {
		require.NoError(t, c.Call(ctx, s.method, s.params, nil), s.method)
	}
	return "127.0.0.1:" + port
}

func runVDA(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHostWriteVerifyRunCheck(t *testing.T) {
	path := exportMalloc(t)
	conn := []string{"--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", path}

	code, out, errs := runVDA(t, append([]string{"host", "write", "--offset", "8192", "--length", "65536", "--seed", "9"}, conn...)...)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, `"op": "write"`)
	code, _, errs = runVDA(t, append([]string{"host", "verify", "--offset", "8192", "--length", "65536", "--seed", "9"}, conn...)...)
	require.Equal(t, exitOK, code, errs)
	// Another seed's pattern is not there: exit status 1, not a usage error.
	code, _, errs = runVDA(t, append([]string{"host", "verify", "--offset", "8192", "--length", "65536", "--seed", "10"}, conn...)...)
	require.Equal(t, exitError, code)
	require.Contains(t, errs, "differ")

	result := filepath.Join(t.TempDir(), "run.json")
	code, out, errs = runVDA(t, append([]string{"host", "run", "--blocks", "64", "--count", "100", "--result", result}, conn...)...)
	require.Equal(t, exitOK, code, errs)
	var res struct {
		Acked   uint64
		Elapsed int64 `json:"elapsed_ns"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.EqualValues(t, 100, res.Acked)
	require.Positive(t, res.Elapsed, "100 writes took no time: %s", out)
	code, out, errs = runVDA(t, append([]string{"host", "check", "--result", result}, conn...)...)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, `"ok": true`)

	// The pattern write over part of the ring destroys acknowledged writes:
	// check notices.
	code, _, errs = runVDA(t, append([]string{"host", "write", "--offset", "0", "--length", "4096", "--seed", "1"}, conn...)...)
	require.Equal(t, exitOK, code, errs)
	code, _, errs = runVDA(t, append([]string{"host", "check", "--result", result}, conn...)...)
	require.Equal(t, exitError, code)
	require.Contains(t, errs, "block 0")

	code, out, errs = runVDA(t, append([]string{"host", "paths"}, conn...)...)
	require.Equal(t, exitOK, code, errs)
	require.Contains(t, out, `"connected": true`)
}

func TestHostUsageErrors(t *testing.T) {
	// A result file with a misspelt key is refused, not read as zeros.
	badResult := filepath.Join(t.TempDir(), "run.json")
	require.NoError(t, os.WriteFile(badResult, []byte(`{"run_id":1,"nsid":1,"block_size":4096,"blocks":64,"Acked":100}`), 0o600))
	for _, args := range [][]string{
		{"host", "write", "--host-nqn", hostTestHost, "--path", "127.0.0.1:1"},                   // no nqn
		{"host", "write", "--nqn", hostTestNQN, "--path", "127.0.0.1:1"},                         // no host nqn
		{"host", "write", "--nqn", hostTestNQN, "--host-nqn", hostTestHost},                      // no path
		{"host", "write", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", "nocolon"}, // bad path
		{"host", "write", "--da-name", "da0", "--path", "127.0.0.1:1"},                           // da without exp
		{"host", "write", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", "127.0.0.1:1", "--length", "100"},
		{"host", "check", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", "127.0.0.1:1", "--result", "/nonexistent/x"},
		{"host", "check", "--nqn", hostTestNQN, "--host-nqn", hostTestHost, "--path", "127.0.0.1:1", "--result", badResult},
	} {
		code, _, errs := runVDA(t, args...)
		require.Equal(t, exitUsage, code, strings.Join(args, " ")+": "+errs)
	}
}
