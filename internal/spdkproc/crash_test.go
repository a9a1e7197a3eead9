package spdkproc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCrashLines(t *testing.T) {
	for _, tc := range []struct {
		name, log string
		want      []string
	}{
		{"clean", "[2024-01-01 00:00:00] app.c: 712:spdk_app_start: *NOTICE*: Total cores available: 1\n" +
			"nvme_qpair.c: 474:spdk_nvme_print_completion: *NOTICE*: ABORTED - SQ DELETION (00/08)\n" +
			"bdev_nvme.c:2553:bdev_nvme_reset_ctrlr_complete: *ERROR*: Resetting controller failed.\n", nil},
		{"raid0", "a\nraid0.c: 128:raid0_submit_rw_request: *ERROR*: base bdev desc null for pd_idx 0\nb\n",
			[]string{"raid0.c: 128:raid0_submit_rw_request: *ERROR*: base bdev desc null for pd_idx 0"}},
		{"glibc", "double free or corruption (!prev)\n", []string{"double free or corruption (!prev)"}},
		{"free", "free(): invalid pointer\n", []string{"free(): invalid pointer"}},
		{"unterminated", "x\nSegmentation fault", []string{"Segmentation fault"}},
		{"two", "Aborted\nok\nAssertion `x' failed.\n", []string{"Aborted", "Assertion `x' failed."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CrashLines(strings.NewReader(tc.log))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// The scanner reads a growing log where it stopped, joins lines split
// across reads, and reports an unterminated line once.
func TestCrashScannerIsIncremental(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	s := newCrashScanner(path)
	require.Empty(t, s.scan(), "no log yet")
	appendTo := func(text string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		require.NoError(t, err)
		_, err = f.WriteString(text)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	appendTo("started\nraid0_submit_rw_request: base bdev ")
	require.Empty(t, s.scan())
	appendTo("desc null for pd_idx 1\nmore\ndouble free")
	require.Equal(t, []string{"raid0_submit_rw_request: base bdev desc null for pd_idx 1", "double free"}, s.scan())
	appendTo(" or corruption (out)\n")
	require.Equal(t, []string{"raid0_submit_rw_request: base bdev desc null for pd_idx 1",
		"double free or corruption (out)"}, s.scan())
	require.Len(t, s.scan(), 2, "nothing new")
}

func TestCrashError(t *testing.T) {
	err := crashError("cn0-spdk", 42, errors.New("exited without being asked to: signal: killed"),
		[]string{"double free"}, "tail")
	require.ErrorIs(t, err, ErrCrashed)
	for _, want := range []string{"cn0-spdk", "pid 42", "signal: killed", "double free", "tail"} {
		require.Contains(t, err.Error(), want)
	}
}
