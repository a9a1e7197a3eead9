package spdk

import "testing"

// CheckFastDecode holds the one-pass decode of method's result b to encoding/json (result and
// error) and reports whether it took b, for the tests outside the package that get b from the
// fake SPDK.
func CheckFastDecode(t *testing.T, method string, b []byte) bool {
	t.Helper()
	switch method {
	case "bdev_get_bdevs":
		return checkTaken(t, b, (*fastParser).bdev)
	case "nvmf_get_subsystems":
		return checkTaken(t, b, (*fastParser).subsystem)
	case "bdev_nvme_get_controllers":
		return checkTaken(t, b, (*fastParser).nvmeController)
	case "bdev_raid_get_bdevs":
		return checkTaken(t, b, (*fastParser).raidBdev)
	case "bdev_lvol_get_lvols":
		return checkTaken(t, b, (*fastParser).lvol)
	case "bdev_lvol_get_lvstores":
		return checkTaken(t, b, (*fastParser).lvstore)
	case "nvmf_subsystem_get_listeners":
		return checkTaken(t, b, (*fastParser).listener)
	}
	t.Fatalf("no one-pass decode of %s", method)
	return false
}

func checkTaken[T any](t *testing.T, b []byte, elem func(*fastParser, *T) bool) bool {
	checkDecodeList(t, b, elem)
	_, ok := decodeList(b, elem)
	return ok
}
