package agent

import (
	"os"
	"testing"
	"time"
)

// TestMain shortens how long a controller node waits for the lvol of an
// initialized array (cnLvolWait, 10 s): the tests of arrays whose lvstore
// is missing wait it out on every sync; the fake's examine takes
// milliseconds.
func TestMain(m *testing.M) {
	cnLvolWait = time.Second
	os.Exit(m.Run())
}
