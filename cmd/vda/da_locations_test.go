package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/portal"
)

// The placement constraint through the CLI: --cn-location and
// --dn-location (repeatable) on da create, kept and shown by da get; a
// constraint nothing satisfies names itself in the error.
func TestCLIDALocations(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{})
	for _, line := range tutorial.Lines()[:6] { // nodes and PDs: DNs in .14 and .15, both CNs in .16
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, "%s: %s", line, errOut)
	}
	base := []string{"--addr-port", addr, "da"}
	create := func(name string, extra ...string) (string, string, int) {
		return runCLI(t, append(append(base, "create", "--da-name", name, "--cntlr-cnt", "2", "--da-size", "16777216",
			"--da-conf", `{"stripe_count":1, "stripe_size_kb":64}`), extra...)...)
	}
	_, errOut, code := create("da0", "--dn-location", "192.168.0.15:9720", "--cn-location", "192.168.0.16:9820")
	require.Zero(t, code, errOut)
	out, errOut, code := runCLI(t, append(base, "get", "--da-name", "da0")...)
	require.Zero(t, code, errOut)
	var got struct {
		DaMsg struct {
			CnLocations []string `json:"cn_locations"`
			DnLocations []string `json:"dn_locations"`
			VdList      []struct {
				DnName string `json:"dn_name"`
			} `json:"vd_list"`
		} `json:"da_msg"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	require.Equal(t, []string{"192.168.0.16:9820"}, got.DaMsg.CnLocations)
	require.Equal(t, []string{"192.168.0.15:9720"}, got.DaMsg.DnLocations)
	require.Len(t, got.DaMsg.VdList, 1)
	require.Equal(t, "192.168.0.15:9720", got.DaMsg.VdList[0].DnName, "the VD is on the DN of the location asked")

	// A repeated create with another constraint is a different DA.
	_, errOut, code = create("da0", "--dn-location", "192.168.0.14:9720", "--cn-location", "192.168.0.16:9820")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "AlreadyExists")
	require.Contains(t, errOut, "dn_locations")

	_, errOut, code = create("da1", "--cn-location", "rack9")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "ResourceExhausted")
	require.Contains(t, errOut, `cn_locations ["rack9"]`)

	_, errOut, code = create("da1", "--dn-location", "rack9", "--dn-location", "rack9")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "InvalidArgument")
	require.Contains(t, errOut, "twice")
}
