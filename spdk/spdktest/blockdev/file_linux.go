package blockdev

import (
	"os"
	"syscall"
)

const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
)

func punchHole(f *os.File, off, length int64) error {
	return syscall.Fallocate(int(f.Fd()), fallocKeepSize|fallocPunchHole, off, length)
}
