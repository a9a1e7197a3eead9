package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vda-io/vda"
	"github.com/vda-io/vda/internal/portalcli"
	"github.com/vda-io/vda/internal/tutorial"
	"github.com/vda-io/vda/portal"
)

// da modify grows the volume and sets QoS limits; a --qos-* flag changes
// that limit only, the others stay.
func TestDAModifySizeAndQoS(t *testing.T) {
	addr, cl := startPortal(t, portal.Config{})
	for _, line := range tutorial.Lines()[:8] { // da0 and exp0
		_, errOut, code := runCLI(t, cliArgs(t, line, addr)...)
		require.Zero(t, code, errOut)
	}
	da := func() vda.DiskArray {
		d, err := cl.GetDiskArray(context.Background(), "da0")
		require.NoError(t, err)
		return d
	}
	out, errOut, code := runCLI(t, "--addr-port", addr, "da", "modify", "--da-name", "da0", "--da-size", "37748736",
		"--qos-rw-iops", "20000", "--qos-w-mbps", "100")
	require.Zero(t, code, errOut)
	require.Contains(t, out, `"rw_ios_per_sec": "20000"`)
	require.EqualValues(t, 37748736, da().SizeBytes)
	require.Equal(t, vda.QoS{RWIOsPerSec: 20000, WriteMBytesPerSec: 100}, da().QoS)

	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "modify", "--da-name", "da0", "--qos-r-mbps", "50", "--qos-rw-iops", "0")
	require.Zero(t, code, errOut)
	require.Equal(t, vda.QoS{ReadMBytesPerSec: 50, WriteMBytesPerSec: 100}, da().QoS, "the other limits stay")
	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "modify", "--da-name", "da0", "--qos-rw-mbps", "10")
	require.Zero(t, code, errOut)
	require.Equal(t, vda.QoS{RWMBytesPerSec: 10, ReadMBytesPerSec: 50, WriteMBytesPerSec: 100}, da().QoS)

	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "modify", "--da-name", "da0", "--da-size", "33554432")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "FailedPrecondition")
	require.Contains(t, errOut, "shrinking is refused")
	_, errOut, code = runCLI(t, "--addr-port", addr, "da", "modify", "--da-name", "da0", "--qos-rw-iops", "1500")
	require.Equal(t, portalcli.ExitError, code)
	require.Contains(t, errOut, "multiple of 1000")
	require.EqualValues(t, 37748736, da().SizeBytes)

	help, _, code := runCLI(t, "da", "modify", "--help")
	require.Zero(t, code)
	require.Contains(t, help, "--qos-rw-iops")
	require.Contains(t, help, "da modify --da-name da0 --da-size")
}
