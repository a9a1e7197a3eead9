package systemdunit

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
)

// CheckExecStart is a binary's test that deploy/systemd/<binary>.service
// starts it with flags it accepts: the unit's ExecStart, with its example
// /etc/vda/*.env filled in, is handed to parse (the binary's own flag
// parsing) while the binary finds its certificates in /etc/vda/tls as the
// unit leaves it to (here: a test CA's directory holding a certificate of
// role and name). Only tests import it.
func CheckExecStart(t *testing.T, binary string, role mtls.Role, name string, parse func(args []string) error) {
	t.Helper()
	dir := "../../deploy/systemd"
	args, err := ExecStart(filepath.Join(dir, binary+".service"), func(p string) string {
		return filepath.Join(dir, strings.TrimPrefix(p, "/etc/vda/"))
	})
	require.NoError(t, err)
	require.Equal(t, "/usr/local/bin/"+binary, args[0])
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	c, err := ca.Issue(role, name)
	require.NoError(t, err)
	t.Setenv(mtls.EnvDir, filepath.Dir(c.CertFile))
	require.NoError(t, parse(args[1:]), "%q", args)
}
