package main

import (
	"bytes"
	"testing"

	"github.com/vda-io/vda/internal/systemdunit"
	"github.com/vda-io/vda/mtls"
)

// deploy/systemd/vda-monitor.service starts this binary with flags it accepts.
func TestSystemdUnitArgs(t *testing.T) {
	systemdunit.CheckExecStart(t, "vda-monitor", mtls.RoleMonitor, "monitor", func(args []string) error {
		_, err := parse(args, &bytes.Buffer{})
		return err
	})
}
