package spdk

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var allSentinels = []error{
	ErrNotFound, ErrExists, ErrBusy, ErrNoSpace, ErrNotPermitted, ErrWrongPhase,
	ErrInvalidArgument, ErrTimeout, ErrInvalidRequest, ErrMethodNotFound, ErrInvalidParams, ErrInternal,
}

const (
	afterInit  = "Method may only be called after framework is initialized using framework_start_init RPC."
	beforeInit = "Method may only be called before framework is initialized. Use --wait-for-rpc command line parameter and then issue this RPC before the framework_start_init RPC."
)

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		code int
		msg  string
		want []error
	}{
		{-19, "No such device", []error{ErrNotFound}},
		{-19, "raid bdev raidZ not found", []error{ErrNotFound}},
		{-2, "No such file or directory", []error{ErrNotFound}},
		{22, "Controller no-such-ctrlr does not exist", []error{ErrNotFound}},
		{-17, "File exists", []error{ErrExists}},
		{-17, "Failed to create RAID bdev rdup: File exists", []error{ErrExists}},
		{-114, "A controller named n0 already exists with the specified network path\n", []error{ErrExists}},
		{-114, "A controller named n0 already exists and multipath is disabled\n", []error{ErrExists}},
		{-32602, "File exists", []error{ErrExists, ErrInvalidParams}},
		{-32603, "Transport type 'TCP' already exists", []error{ErrExists, ErrInternal}},
		{-16, "Device or resource busy", []error{ErrBusy}},
		{-32602, "Device or resource busy", []error{ErrBusy, ErrInvalidParams}},
		{-32602, "No space left on device", []error{ErrNoSpace, ErrInvalidParams}},
		{-1, afterInit, []error{ErrWrongPhase}},
		{-1, beforeInit, []error{ErrWrongPhase}},
		{-1, "Operation not permitted", []error{ErrNotPermitted}},
		{-1, "Failed to create RAID bdev raidW: Operation not permitted", []error{ErrNotPermitted}},
		{-32603, "Operation not permitted", []error{ErrNotPermitted, ErrInternal}},
		{-22, "Invalid argument", []error{ErrInvalidArgument}},
		{-110, "Connection timed out", []error{ErrTimeout}},
		{-32600, "Invalid request", []error{ErrInvalidRequest}},
		{-32601, "Method not found", []error{ErrMethodNotFound}},
		{-32602, "Invalid parameters", []error{ErrInvalidParams}},
		{-32700, "spdk_json_decode_object failed", []error{ErrInvalidParams}},
		{-32603, "spdk_json_decode_object failed", []error{ErrInvalidParams, ErrInternal}},
		{-32603, "Unable to create subsystem nqn.x", []error{ErrInternal}},
		{-32603, "Internal error", []error{ErrInternal}},
		{-12, "Cannot allocate memory", nil},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.code, tc.msg), func(t *testing.T) {
			var err error = fmt.Errorf("wrapped: %w", &Error{Method: "m", Code: tc.code, Message: tc.msg})
			for _, s := range allSentinels {
				want := false
				for _, w := range tc.want {
					want = want || w == s
				}
				require.Equal(t, want, errors.Is(err, s), "errors.Is(%v)", s)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Method: "bdev_nvme_attach_controller", Code: -114, Message: "A controller named n0 already exists\n"}
	require.Equal(t, "spdk: bdev_nvme_attach_controller: A controller named n0 already exists (code -114)", e.Error())
}

// TestRecordedErrorsMap checks that every error real SPDK returned in the recordings maps to
// at least one sentinel, except the allocation failure which has no sentinel of its own.
func TestRecordedErrorsMap(t *testing.T) {
	dir := transcriptsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	seen := 0
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for line := 1; sc.Scan(); line++ {
			var rec struct {
				Response *struct {
					Error *wireError `json:"error"`
				} `json:"response"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Response == nil || rec.Response.Error == nil {
				continue
			}
			seen++
			e := &Error{Method: "m", Code: rec.Response.Error.Code, Message: rec.Response.Error.Message}
			if e.Code == -12 || e.Message == "Cannot allocate memory" {
				continue
			}
			matched := false
			for _, s := range allSentinels {
				matched = matched || errors.Is(e, s)
			}
			require.True(t, matched, "%s:%d: %v maps to no sentinel", filepath.Base(f), line, e)
			if e.Code == -1 {
				require.NotEqual(t, errors.Is(e, ErrWrongPhase), errors.Is(e, ErrNotPermitted),
					"%s:%d: -1 must be exactly one of wrong phase or not permitted", filepath.Base(f), line)
			}
		}
		fh.Close()
	}
	require.Greater(t, seen, 100)
}
