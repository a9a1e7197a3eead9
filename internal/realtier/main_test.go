package realtier

import (
	"os"
	"testing"

	"github.com/vda-io/vda/internal/multihost"
)

func TestMain(m *testing.M) {
	code := m.Run()
	multihost.RemoveBinaries()
	os.Exit(code)
}
