package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda/internal/systemdunit"
	"github.com/vda-io/vda/mtls"
	"github.com/vda-io/vda/mtls/mtlstest"
)

// deploy/systemd/vda-portal.service starts this binary with flags it accepts
// (its example /etc/vda/portal.env filled in), finding its certificates in
// /etc/vda/tls as the unit leaves it to (here: a test CA's directory).
func TestSystemdUnitArgs(t *testing.T) {
	args, err := systemdunit.ExecStart("../../deploy/systemd/vda-portal.service", func(p string) string {
		return filepath.Join("../../deploy/systemd", strings.TrimPrefix(p, "/etc/vda/"))
	})
	require.NoError(t, err)
	require.Equal(t, "/usr/local/bin/vda-portal", args[0])
	ca, err := mtlstest.NewCA(t.TempDir())
	require.NoError(t, err)
	c, err := ca.Issue(mtls.RolePortal, "portal")
	require.NoError(t, err)
	t.Setenv(mtls.EnvDir, filepath.Dir(c.CertFile))
	_, err = parse(args[1:], &bytes.Buffer{})
	require.NoError(t, err, "%q", args)
}
