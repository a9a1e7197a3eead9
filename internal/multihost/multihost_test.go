package multihost

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPoll(t *testing.T) {
	n := 0
	require.NoError(t, Poll(time.Minute, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}))
	require.Equal(t, 3, n)
	err := Poll(20*time.Millisecond, time.Millisecond, func() error { return errors.New("never") })
	require.ErrorContains(t, err, "never")
	require.ErrorContains(t, err, "after 20ms")
}

// daGet is what `vda da get` prints, trimmed to what DAState reads.
const daGet = `{"da_msg": {"da_name": "da0", "epoch": "%s", "primary_cntlr_id": "a",
  "cntlr_list": [
    {"cntlr_id": "a", "cntlr_idx": 0, "cn_name": "192.168.0.16:9820", "primary": %s, "health": "%s", "error": false},
    {"cntlr_id": "b", "cntlr_idx": 1, "cn_name": "192.168.0.17:9820", "primary": %s, "health": "healthy", "error": false}],
  "vd_list": [{"vd_idx": 0, "dn_name": "192.168.0.14:9720", "health": "%s"}],
  "status": {"health": "%s"}}}`

func TestDAState(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		epoch, p0, h0, p1, vd, health string
		primary                       int
		settled0, settledAny, primOK  bool
	}{
		{"healthy", "3", "true", "healthy", "false", "healthy", "healthy", 0, true, true, true},
		{"vd degraded", "3", "true", "healthy", "false", "degraded", "degraded", 0, false, false, true},
		{"primary failed", "3", "true", "failed", "false", "healthy", "failed", 0, false, false, false},
		{"two primaries", "3", "true", "healthy", "true", "healthy", "healthy", -1, false, false, false},
		{"moved", "4", "false", "failed", "true", "healthy", "degraded", 1, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st DAState
			raw := []byte(fmt.Sprintf(daGet, tc.epoch, tc.p0, tc.h0, tc.p1, tc.vd, tc.health))
			require.NoError(t, json.Unmarshal(raw, &st))
			require.Equal(t, tc.primary, st.Primary())
			n, _ := st.DaMsg.Epoch.Int64()
			require.Equal(t, n, st.Epoch())
			require.Equal(t, tc.settled0, st.Settled(0, true), "settled on 0")
			require.Equal(t, tc.settledAny, st.Settled(-1, true), "settled on any")
			require.Equal(t, tc.primOK, st.Settled(-1, false), "primary healthy")
		})
	}
}
