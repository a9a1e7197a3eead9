package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/portal"
)

func TestCertsInitAndIssue(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	out, errOut, code := runCLI(t, "certs", "init", "--dir", ca)
	require.Zero(t, code, errOut)
	require.Contains(t, out, "ca.key")
	_, errOut, code = runCLI(t, "certs", "init", "--dir", ca)
	require.Equal(t, portalcli.ExitError, code, "an existing CA is not replaced")
	require.Contains(t, errOut, "--force")

	dn0 := filepath.Join(dir, "dn0")
	out, errOut, code = runCLI(t, "certs", "issue", "--dir", ca, "--role", "agent", "--name", "192.168.0.14:9720", "--out", dn0)
	require.Zero(t, code, errOut)
	require.Contains(t, out, "vda://agent/192.168.0.14:9720 (ip 192.168.0.14")
	for file, mode := range map[string]os.FileMode{"ca.crt": 0o644, "agent.crt": 0o644, "agent.key": 0o600} {
		st, err := os.Stat(filepath.Join(dn0, file))
		require.NoError(t, err, file)
		require.Equal(t, mode, st.Mode().Perm(), file)
	}
	_, err := os.Stat(filepath.Join(dn0, "ca.key"))
	require.ErrorIs(t, err, os.ErrNotExist, "the CA's key stays in the CA's directory")
	cert, err := mtls.ReadCertificate(filepath.Join(dn0, "agent.crt"))
	require.NoError(t, err)
	require.Equal(t, "192.168.0.14", cert.IPAddresses[0].String())
	_, errOut, code = runCLI(t, "certs", "issue", "--dir", ca, "--role", "agent", "--name", "192.168.0.14:9720", "--out", dn0)
	require.Equal(t, portalcli.ExitError, code, "no silent overwrite")
	require.Contains(t, errOut, "--force")
	_, errOut, code = runCLI(t, "certs", "issue", "--dir", ca, "--role", "agent", "--name", "192.168.0.14:9720", "--out", dn0, "--force")
	require.Zero(t, code, errOut)
	out, errOut, code = runCLI(t, "certs", "show", filepath.Join(dn0, "agent.crt"))
	require.Zero(t, code, errOut)
	require.Contains(t, out, "vda://agent/192.168.0.14:9720 ip 192.168.0.14")

	for name, args := range map[string][]string{
		"bad role":           {"--role", "root"},
		"agent without port": {"--role", "agent", "--name", "192.168.0.14"},
		"agent bad port":     {"--role", "agent", "--name", "192.168.0.14:http"},
		"portal without ip":  {"--role", "portal"},
		"bad ip":             {"--role", "portal", "--ip", "192.168.0"},
		"bad name":           {"--role", "admin", "--name", "a b"},
		"bad days":           {"--role", "admin", "--days", "0"},
		"no role":            {},
	} {
		_, errOut, code := runCLI(t, append([]string{"certs", "issue", "--dir", ca, "--out", filepath.Join(dir, "x")}, args...)...)
		require.Equal(t, portalcli.ExitUsage, code, "%s: %s", name, errOut)
	}
	_, errOut, code = runCLI(t, "certs", "issue", "--dir", filepath.Join(dir, "nope"), "--role", "admin")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "vda certs init")

	help, _, code := runCLI(t, "certs", "issue", "--help")
	require.Zero(t, code)
	require.Contains(t, help, "vda://<role>/<name>")
	require.Contains(t, help, "/etc/vda/tls")
}

// Certificates made with vda certs let the tutorial's commands run as
// written (no TLS flags) against a portal that serves mutual TLS.
func TestCertsDriveTheTutorial(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	for _, args := range [][]string{
		{"certs", "init", "--dir", ca},
		{"certs", "issue", "--dir", ca, "--role", "portal", "--ip", "127.0.0.1", "--out", filepath.Join(dir, "portal")},
		{"certs", "issue", "--dir", ca, "--role", "admin", "--name", "alice", "--out", filepath.Join(dir, "cli")},
	} {
		_, errOut, code := runCLI(t, args...)
		require.Zero(t, code, errOut)
	}
	addr, _ := startPortal(t, portal.Config{TLS: mtls.Files(filepath.Join(dir, "portal"), mtls.RolePortal)})
	t.Setenv(mtls.EnvDir, filepath.Join(dir, "cli"))
	for _, line := range tutorial.Lines() {
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, "%s: %s", line, errOut)
	}
}
