package vda_test

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs the tests, or, when the test binary was started by
// BenchmarkCreatePortalProcs as one of its portals (portalProcEnv set),
// serves that portal until its standard input closes.
func TestMain(m *testing.M) {
	if uri := os.Getenv(portalProcEnv); uri != "" {
		if err := runPortalProc(uri, os.Getenv(portalProcIndexEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "portal process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
