package cmdrun

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// The one store of a machine's binaries started without --db-uri:
// vda-portal runs an embedded etcd in <data dir>/etcd (EmbeddedStoreURI),
// whose client endpoint is the unix socket <data dir>/etcd/etcd.sock
// (LocalStoreSocket), and vda-monitor connects to it there
// (LocalStoreURI). The directory is the portal's, mode 0700, so only its
// user (root or the vda user of the units in deploy/systemd) reaches the
// socket.
const (
	// EmbeddedStoreDir is the embedded etcd's directory in the data dir.
	EmbeddedStoreDir = "etcd"
	// LocalStoreSocketName is the socket's name in that directory (the
	// default of etcdembed.Config.Socket).
	LocalStoreSocketName = "etcd.sock"
)

// EmbeddedStoreURI is the embedded:// URI (as etcdembed.URI makes it; cmdrun
// links no etcd, for vda-agent) of the store vda-portal runs
// without --db-uri.
func EmbeddedStoreURI(dataDir string) (string, error) {
	abs, err := filepath.Abs(filepath.Join(dataDir, EmbeddedStoreDir))
	if err != nil {
		return "", fmt.Errorf("data directory %q: %w", dataDir, err)
	}
	return (&url.URL{Scheme: "embedded", Path: abs}).String(), nil
}

// LocalStoreSocket is the absolute path of the unix socket that store
// serves its clients on.
func LocalStoreSocket(dataDir string) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("data directory %q: %w", dataDir, err)
	}
	return filepath.Join(abs, EmbeddedStoreDir, LocalStoreSocketName), nil
}

// LocalStoreURI is the etcd:// URI that reaches that store through its
// socket (etcd:///?endpoint=unix:///var/lib/vda/etcd/etcd.sock), the whole
// keyspace as the portal sees it.
func LocalStoreURI(dataDir string) (string, error) {
	sock, err := LocalStoreSocket(dataDir)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "etcd", Path: "/", RawQuery: url.Values{"endpoint": {"unix://" + sock}}.Encode()}
	return u.String(), nil
}

// CheckLocalStore reports whether the socket of LocalStoreSocket(dataDir)
// exists, with what to do if not.
func CheckLocalStore(dataDir string) error {
	sock, err := LocalStoreSocket(dataDir)
	if err != nil {
		return err
	}
	fi, err := os.Stat(sock)
	if err == nil && fi.Mode()&os.ModeSocket != 0 {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("not a socket")
	}
	return fmt.Errorf("no --db-uri, and no vda-portal store on this machine at %s (%w): start vda-portal "+
		"without --db-uri and with the same --data-dir first, or give both the same --db-uri", sock, err)
}
