package vda

import (
	"strings"

	"github.com/vda-io/vda/nvmeof"
)

// Store layout. Values are JSON; specs and statuses live under separate
// keys so the monitor's status writes never conflict with spec edits.
const (
	// Prefix is the root of every key VDA writes.
	Prefix    = "/vda/"
	PrefixDN  = Prefix + "dn/"
	PrefixPD  = Prefix + "pd/"
	PrefixCN  = Prefix + "cn/"
	PrefixDA  = Prefix + "da/"
	PrefixExp = Prefix + "exp/"
	// PrefixSnap and PrefixClone hold the snapshots and clones of DAs.
	PrefixSnap   = Prefix + "snap/"
	PrefixClone  = Prefix + "clone/"
	PrefixStatus = Prefix + "status/"
	// PrefixListener holds one claim per NVMe-oF listener in use, naming
	// the node it belongs to (no two nodes share one).
	PrefixListener = Prefix + "listener/"
)

// KeyListener is the claim key of NVMe-oF listener t:
// "/vda/listener/tcp/192.168.0.14/4420".
func KeyListener(t nvmeof.TransportID) string {
	return PrefixListener + t.TrType + "/" + t.TrAddr + "/" + t.TrSvcID
}

// KeyDN is the key of disk node dn.
func KeyDN(dn string) string { return PrefixDN + dn }

// KeyPDs is the prefix of the PDs of disk node dn.
func KeyPDs(dn string) string { return PrefixPD + dn + "/" }

// KeyPD is the key of PD pd on disk node dn.
func KeyPD(dn, pd string) string { return KeyPDs(dn) + pd }

// KeyCN is the key of controller node cn.
func KeyCN(cn string) string { return PrefixCN + cn }

// KeyDA is the key of disk array da.
func KeyDA(da string) string { return PrefixDA + da }

// KeyExps is the prefix of the exporters of disk array da.
func KeyExps(da string) string { return PrefixExp + da + "/" }

// KeyExp is the key of exporter exp of disk array da.
func KeyExp(da, exp string) string { return KeyExps(da) + exp }

// KeySnaps is the prefix of the snapshots of disk array da.
func KeySnaps(da string) string { return PrefixSnap + da + "/" }

// KeySnap is the key of snapshot snap of disk array da.
func KeySnap(da, snap string) string { return KeySnaps(da) + snap }

// KeyClones is the prefix of the clones of disk array da.
func KeyClones(da string) string { return PrefixClone + da + "/" }

// KeyClone is the key of clone clone of disk array da.
func KeyClone(da, clone string) string { return KeyClones(da) + clone }

// KeyStatus returns the status key of the object whose spec is at specKey:
// "/vda/dn/x" -> "/vda/status/dn/x". The monitor writes Status there.
func KeyStatus(specKey string) string {
	return PrefixStatus + strings.TrimPrefix(strings.TrimPrefix(specKey, Prefix), "/")
}
