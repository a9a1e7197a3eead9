package cmdrun

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// EnvNotifySocket is where systemd tells a Type=notify service to report
// its state (sd_notify(3)).
const EnvNotifySocket = "NOTIFY_SOCKET"

// Notify sends state (e.g. "READY=1") to the service manager when
// $NOTIFY_SOCKET names one, and says whether it did. Without the variable
// it does nothing, so binaries call it unconditionally. A leading '@' names
// an abstract socket, as in sd_notify.
func Notify(state string) (bool, error) {
	path := os.Getenv(EnvNotifySocket)
	if path == "" {
		return false, nil
	}
	if rest, ok := strings.CutPrefix(path, "@"); ok {
		path = "\x00" + rest
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notify %s: %w", EnvNotifySocket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("notify %s: %w", EnvNotifySocket, err)
	}
	return true, nil
}

// Warner is what NotifyReady logs through (hclog.Logger is one).
type Warner interface {
	Warn(msg string, args ...any)
}

// NotifyReady tells the service manager (if any) that the binary serves:
// a Type=notify unit's dependents start only then. A failure is logged, not
// fatal: the service works, only its readiness report is lost.
func NotifyReady(log Warner) {
	if _, err := Notify("READY=1"); err != nil {
		log.Warn("cannot report readiness to the service manager", "error", err)
	}
}
