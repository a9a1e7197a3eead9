package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/portal"
)

func TestDASwitchover(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{})
	for _, line := range tutorial.Lines()[:8] { // da0 and exp0
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	out, errOut, code := runCLI(t, "--addr-port", addr, "da", "switchover", "--da-name", "da0", "--cntlr-idx", "1")
	require.Zero(t, code, errOut)
	var got struct {
		DaMsg struct {
			Epoch          json.Number `json:"epoch"`
			PrimaryCntlrID string      `json:"primary_cntlr_id"`
			CntlrList      []struct {
				CntlrID  string `json:"cntlr_id"`
				CntlrIdx int    `json:"cntlr_idx"`
				Primary  bool   `json:"primary"`
			} `json:"cntlr_list"`
		} `json:"da_msg"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Equal(t, "2", got.DaMsg.Epoch.String())
	for _, c := range got.DaMsg.CntlrList {
		require.Equal(t, c.CntlrIdx == 1, c.Primary)
		if c.Primary {
			require.Equal(t, c.CntlrID, got.DaMsg.PrimaryCntlrID)
		}
	}

	// Refused: already the primary; and both flags are required.
	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "switchover", "--da-name", "da0", "--cntlr-idx", "1")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "FailedPrecondition")
	require.Contains(t, errOut, "already the primary")
	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "switchover", "--da-name", "da0")
	require.Equal(t, portalcli.ExitUsage, code)
	require.Contains(t, errOut, "cntlr-idx")

	help, _, code := runCLI(t, "da", "switchover", "--help")
	require.Zero(t, code)
	require.Contains(t, help, "vda --addr-port 192.168.0.11:9520 da switchover --da-name da0 --cntlr-idx 1")
}
