package fabric

import (
	"net"
	"strings"

	"github.com/vda-io/vda/spdk/spdktest/blockdev"
)

// TransportID names a listener address (SPDK's trtype/adrfam/traddr/trsvcid).
type TransportID struct {
	TrType, AdrFam, TrAddr, TrSvcID string
}

// key identifies a listening address.
func (t TransportID) key() string { return net.JoinHostPort(t.TrAddr, t.TrSvcID) }

func (t TransportID) sameAddr(o TransportID) bool {
	return t.TrAddr == o.TrAddr && t.TrSvcID == o.TrSvcID
}

func (t TransportID) valid() bool {
	return strings.EqualFold(t.TrType, "tcp") && t.TrAddr != "" && t.TrSvcID != ""
}

// Namespace is what a target serves under a namespace id.
type Namespace struct {
	NSID        uint32
	NGUID, UUID string
	Dev         blockdev.Device
}

// NamespaceInfo describes a namespace to the host.
type NamespaceInfo struct {
	NSID      uint32 `json:"nsid"`
	NGUID     string `json:"nguid"`
	UUID      string `json:"uuid"`
	BlockSize uint32 `json:"block_size"`
	NumBlocks uint64 `json:"num_blocks"`
}

// ControllerInfo is what identify returns to a host.
type ControllerInfo struct {
	CntlID       uint16          `json:"cntlid"`
	SerialNumber string          `json:"serial_number"`
	ModelNumber  string          `json:"model_number"`
	SubNQN       string          `json:"subnqn"`
	ANAReporting bool            `json:"ana_reporting"`
	ANAState     string          `json:"ana_state"`
	Namespaces   []NamespaceInfo `json:"namespaces"`
}

// Namespace returns the info of namespace nsid.
func (c ControllerInfo) Namespace(nsid uint32) (NamespaceInfo, bool) {
	for _, n := range c.Namespaces {
		if n.NSID == nsid {
			return n, true
		}
	}
	return NamespaceInfo{}, false
}

// Admit is called by the target for every connecting host; the control
// plane decides (allow-list, subsystem exists and listens on local, cntlid
// range). It returns the controller info and the namespaces to serve;
// NamespaceInfo entries missing from the info are filled in from the
// namespaces. Returning an error wrapping ErrNotAllowed or ErrNoSubsystem
// tells the host so; any other error is ErrRejected with its message.
type Admit func(subNQN, hostNQN string, local TransportID) (ControllerInfo, []Namespace, error)

// Session is one connected host, as nvmf_subsystem_get_controllers and
// get_qpairs show it.
type Session struct {
	CntlID   uint16
	SubNQN   string
	HostNQN  string
	Local    TransportID
	PeerAddr string
	ANAState string
}
