package main

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/portal"
)

// The exporter's hosts through the CLI: --host-nqn besides
// --initiator-nqn on create, --add-host-nqn/--remove-host-nqn on modify,
// shown by get (JSON and table); a second exporter of the volume is
// refused with what to do instead.
func TestCLIExporterHosts(t *testing.T) {
	addr, _ := startPortal(t, portal.Config{})
	for _, line := range tutorial.Lines()[:7] { // nodes, PDs and da0, no exporter yet
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, "%s: %s", line, errOut)
	}
	const h0, h1, h2 = "nqn.2016-06.io.spdk:host0", "nqn.2016-06.io.spdk:host1", "nqn.2016-06.io.spdk:host2"
	hosts := func(out string) []string {
		var r struct {
			ExpMsg struct {
				HostNQNs     []string `json:"host_nqns"`
				InitiatorNQN string   `json:"initiator_nqn"`
			} `json:"exp_msg"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &r), out)
		require.Equal(t, r.ExpMsg.HostNQNs[0], r.ExpMsg.InitiatorNQN)
		return r.ExpMsg.HostNQNs
	}
	base := []string{"--addr-port", addr, "exp"}
	names := []string{"--da-name", "da0", "--exp-name", "exp0"}
	out, errOut, code := runCLI(t, append(append(base, "create"), append(names, "--initiator-nqn", h0, "--host-nqn", h1)...)...)
	require.Zero(t, code, errOut)
	require.Equal(t, []string{h0, h1}, hosts(out))

	out, errOut, code = runCLI(t, append(append(base, "modify"), append(names, "--add-host-nqn", h2, "--remove-host-nqn", h0)...)...)
	require.Zero(t, code, errOut)
	require.Equal(t, []string{h1, h2}, hosts(out))
	out, errOut, code = runCLI(t, append(append(base, "get"), names...)...)
	require.Zero(t, code, errOut)
	require.Equal(t, []string{h1, h2}, hosts(out))
	out, errOut, code = runCLI(t, append(append([]string{"--addr-port", addr, "-o", "table", "exp"}, "get"), names...)...)
	require.Zero(t, code, errOut)
	require.Regexp(t, `(?m)^host_nqns: +`+regexp.QuoteMeta(h1+" "+h2)+`$`, out)
	out, errOut, code = runCLI(t, "--addr-port", addr, "-o", "table", "exp", "list")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "HOST_NQNS")
	require.Contains(t, out, h1+" "+h2)

	_, errOut, code = runCLI(t, append(append(base, "create"), "--da-name", "da0", "--exp-name", "exp1", "--host-nqn", h0)...)
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "FailedPrecondition")
	require.Contains(t, errOut, "vda exp modify --da-name da0 --exp-name exp0 --add-host-nqn")

	_, errOut, code = runCLI(t, append(append(base, "create"), "--da-name", "da0", "--exp-name", "exp1")...)
	require.Equal(t, portalcli.ExitUsage, code, "a host is required")
	require.Contains(t, errOut, "initiator-nqn host-nqn")
}
