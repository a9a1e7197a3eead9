package main

import (
	"bytes"
	"testing"

	"github.com/vda-io/vda/internal/systemdunit"
	"github.com/vda-io/vda/mtls"
)

// deploy/systemd/vda-agent.service starts this binary with flags it accepts.
func TestSystemdUnitArgs(t *testing.T) {
	systemdunit.CheckExecStart(t, "vda-agent", mtls.RoleAgent, "192.168.0.14:9720", func(args []string) error {
		_, err := parse(args, &bytes.Buffer{})
		return err
	})
}
