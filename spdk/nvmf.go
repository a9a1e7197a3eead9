package spdk

import "context"

// NvmfCreateTransportParams are the params of nvmf_create_transport. An existing transport of
// the same type fails with ErrExists.
type NvmfCreateTransportParams struct {
	TRType              string  `json:"trtype"` // TCP
	MaxQueueDepth       *uint32 `json:"max_queue_depth,omitempty"`
	MaxIOQpairsPerCtrlr *uint32 `json:"max_io_qpairs_per_ctrlr,omitempty"`
	InCapsuleDataSize   *uint32 `json:"in_capsule_data_size,omitempty"`
	MaxIOSize           *uint32 `json:"max_io_size,omitempty"`
	IOUnitSize          *uint32 `json:"io_unit_size,omitempty"`
	MaxAQDepth          *uint32 `json:"max_aq_depth,omitempty"`
	NumSharedBuffers    *uint32 `json:"num_shared_buffers,omitempty"`
	BufCacheSize        *uint32 `json:"buf_cache_size,omitempty"`
	DIFInsertOrStrip    *bool   `json:"dif_insert_or_strip,omitempty"`
	AbortTimeoutSec     *uint32 `json:"abort_timeout_sec,omitempty"`
	Zcopy               *bool   `json:"zcopy,omitempty"`
	AcceptorPollRate    *uint32 `json:"acceptor_poll_rate,omitempty"`
	C2HSuccess          *bool   `json:"c2h_success,omitempty"`
	SockPriority        *uint32 `json:"sock_priority,omitempty"`
	ControlMsgNum       *uint32 `json:"control_msg_num,omitempty"`
}

// NvmfCreateTransport calls nvmf_create_transport.
func (c *Client) NvmfCreateTransport(ctx context.Context, p NvmfCreateTransportParams) error {
	return c.Call(ctx, "nvmf_create_transport", p, nil)
}

// Transport is one element of nvmf_get_transports.
type Transport struct {
	TRType              string `json:"trtype"`
	MaxQueueDepth       uint32 `json:"max_queue_depth"`
	MaxIOQpairsPerCtrlr uint32 `json:"max_io_qpairs_per_ctrlr"`
	InCapsuleDataSize   uint32 `json:"in_capsule_data_size"`
	MaxIOSize           uint32 `json:"max_io_size"`
	IOUnitSize          uint32 `json:"io_unit_size"`
	MaxAQDepth          uint32 `json:"max_aq_depth"`
	NumSharedBuffers    uint32 `json:"num_shared_buffers"`
	BufCacheSize        uint32 `json:"buf_cache_size"`
	DIFInsertOrStrip    bool   `json:"dif_insert_or_strip"`
	Zcopy               bool   `json:"zcopy"`
	C2HSuccess          bool   `json:"c2h_success"`
	SockPriority        uint32 `json:"sock_priority"`
	AbortTimeoutSec     uint32 `json:"abort_timeout_sec"`
}

// NvmfGetTransports calls nvmf_get_transports.
func (c *Client) NvmfGetTransports(ctx context.Context) ([]Transport, error) {
	var out []Transport
	err := c.Call(ctx, "nvmf_get_transports", nil, &out)
	return out, err
}

// NvmfCreateSubsystemParams are the params of nvmf_create_subsystem. nil leaves SPDK's
// default (allow_any_host false, cntlid 1..65519, 32 namespaces, no ANA reporting).
type NvmfCreateSubsystemParams struct {
	NQN           string  `json:"nqn"`
	SerialNumber  string  `json:"serial_number,omitempty"` // at most 20 ASCII characters
	ModelNumber   string  `json:"model_number,omitempty"`  // at most 40 characters
	AllowAnyHost  *bool   `json:"allow_any_host,omitempty"`
	MaxNamespaces *uint32 `json:"max_namespaces,omitempty"`
	// MinCntlID and MaxCntlID must give every controller of one NQN a disjoint range, or a
	// host refuses the second path.
	MinCntlID             *uint16 `json:"min_cntlid,omitempty"`
	MaxCntlID             *uint16 `json:"max_cntlid,omitempty"`
	ANAReporting          *bool   `json:"ana_reporting,omitempty"`
	MaxDiscardSizeKiB     *uint64 `json:"max_discard_size_kib,omitempty"`
	MaxWriteZeroesSizeKiB *uint64 `json:"max_write_zeroes_size_kib,omitempty"`
	TgtName               string  `json:"tgt_name,omitempty"`
}

// NvmfCreateSubsystem calls nvmf_create_subsystem. A duplicate (or malformed) NQN fails
// with ErrInternal ("Unable to create subsystem").
func (c *Client) NvmfCreateSubsystem(ctx context.Context, p NvmfCreateSubsystemParams) error {
	return c.Call(ctx, "nvmf_create_subsystem", p, nil)
}

// NQNParams is the {"nqn": ...} params object.
type NQNParams struct {
	NQN     string `json:"nqn"`
	TgtName string `json:"tgt_name,omitempty"`
}

// NvmfDeleteSubsystem calls nvmf_delete_subsystem. An unknown NQN fails with
// ErrInvalidParams (SPDK does not say "not found" here).
func (c *Client) NvmfDeleteSubsystem(ctx context.Context, p NQNParams) error {
	return c.Call(ctx, "nvmf_delete_subsystem", p, nil)
}

// Namespace is the namespace object of nvmf_subsystem_add_ns.
type Namespace struct {
	BdevName string `json:"bdev_name"`      // a name, an alias or a uuid
	NSID     uint32 `json:"nsid,omitempty"` // 0: the lowest free one
	UUID     string `json:"uuid,omitempty"`
	NGUID    string `json:"nguid,omitempty"` // 32 hex digits
	EUI64    string `json:"eui64,omitempty"`
	PTPLFile string `json:"ptpl_file,omitempty"`
	ANAGrpID uint32 `json:"anagrpid,omitempty"`
}

// NvmfSubsystemAddNsParams are the params of nvmf_subsystem_add_ns.
type NvmfSubsystemAddNsParams struct {
	NQN       string    `json:"nqn"`
	Namespace Namespace `json:"namespace"`
	TgtName   string    `json:"tgt_name,omitempty"`
}

// NvmfSubsystemAddNs calls nvmf_subsystem_add_ns and returns the namespace id.
func (c *Client) NvmfSubsystemAddNs(ctx context.Context, p NvmfSubsystemAddNsParams) (uint32, error) {
	var nsid uint32
	err := c.Call(ctx, "nvmf_subsystem_add_ns", p, &nsid)
	return nsid, err
}

// NvmfSubsystemRemoveNsParams are the params of nvmf_subsystem_remove_ns.
type NvmfSubsystemRemoveNsParams struct {
	NQN     string `json:"nqn"`
	NSID    uint32 `json:"nsid"`
	TgtName string `json:"tgt_name,omitempty"`
}

// NvmfSubsystemRemoveNs calls nvmf_subsystem_remove_ns.
func (c *Client) NvmfSubsystemRemoveNs(ctx context.Context, p NvmfSubsystemRemoveNsParams) error {
	return c.Call(ctx, "nvmf_subsystem_remove_ns", p, nil)
}

// ListenAddress is the listen_address object of the listener methods.
type ListenAddress struct {
	TRType  string `json:"trtype"` // TCP
	TRAddr  string `json:"traddr"`
	TRSvcID string `json:"trsvcid,omitempty"`
	AdrFam  string `json:"adrfam,omitempty"` // ipv4 (default), ipv6
}

// ANA states for listeners.
const (
	ANAOptimized    = "optimized"
	ANANonOptimized = "non_optimized"
	ANAInaccessible = "inaccessible"
)

// NvmfSubsystemAddListenerParams are the params of nvmf_subsystem_add_listener. Adding the
// same listener again succeeds.
type NvmfSubsystemAddListenerParams struct {
	NQN           string        `json:"nqn"`
	ListenAddress ListenAddress `json:"listen_address"`
	SecureChannel *bool         `json:"secure_channel,omitempty"`
	ANAState      string        `json:"ana_state,omitempty"` // newer SPDK only
	TgtName       string        `json:"tgt_name,omitempty"`
}

// NvmfSubsystemAddListener calls nvmf_subsystem_add_listener.
func (c *Client) NvmfSubsystemAddListener(ctx context.Context, p NvmfSubsystemAddListenerParams) error {
	return c.Call(ctx, "nvmf_subsystem_add_listener", p, nil)
}

// NvmfSubsystemRemoveListenerParams are the params of nvmf_subsystem_remove_listener.
type NvmfSubsystemRemoveListenerParams struct {
	NQN           string        `json:"nqn"`
	ListenAddress ListenAddress `json:"listen_address"`
	TgtName       string        `json:"tgt_name,omitempty"`
}

// NvmfSubsystemRemoveListener calls nvmf_subsystem_remove_listener.
func (c *Client) NvmfSubsystemRemoveListener(ctx context.Context, p NvmfSubsystemRemoveListenerParams) error {
	return c.Call(ctx, "nvmf_subsystem_remove_listener", p, nil)
}

// NvmfSubsystemListenerSetANAStateParams are the params of
// nvmf_subsystem_listener_set_ana_state (the subsystem needs ana_reporting).
type NvmfSubsystemListenerSetANAStateParams struct {
	NQN           string        `json:"nqn"`
	ListenAddress ListenAddress `json:"listen_address"`
	ANAState      string        `json:"ana_state"`          // ANAOptimized, ANANonOptimized, ANAInaccessible
	ANAGrpID      uint32        `json:"anagrpid,omitempty"` // 0: every ANA group
	TgtName       string        `json:"tgt_name,omitempty"`
}

// NvmfSubsystemListenerSetANAState calls nvmf_subsystem_listener_set_ana_state.
func (c *Client) NvmfSubsystemListenerSetANAState(ctx context.Context, p NvmfSubsystemListenerSetANAStateParams) error {
	return c.Call(ctx, "nvmf_subsystem_listener_set_ana_state", p, nil)
}

// NvmfSubsystemHostParams are the params of nvmf_subsystem_add_host and _remove_host.
type NvmfSubsystemHostParams struct {
	NQN     string `json:"nqn"`
	Host    string `json:"host"`
	PSK     string `json:"psk,omitempty"`
	TgtName string `json:"tgt_name,omitempty"`
}

// NvmfSubsystemAddHost calls nvmf_subsystem_add_host. A duplicate host succeeds.
func (c *Client) NvmfSubsystemAddHost(ctx context.Context, p NvmfSubsystemHostParams) error {
	return c.Call(ctx, "nvmf_subsystem_add_host", p, nil)
}

// NvmfSubsystemRemoveHost calls nvmf_subsystem_remove_host. It disconnects that host's
// controllers at once; a host not in the list fails with ErrInternal.
func (c *Client) NvmfSubsystemRemoveHost(ctx context.Context, p NvmfSubsystemHostParams) error {
	return c.Call(ctx, "nvmf_subsystem_remove_host", p, nil)
}

// NvmfSubsystemAllowAnyHostParams are the params of nvmf_subsystem_allow_any_host.
type NvmfSubsystemAllowAnyHostParams struct {
	NQN          string `json:"nqn"`
	AllowAnyHost bool   `json:"allow_any_host"`
	TgtName      string `json:"tgt_name,omitempty"`
}

// NvmfSubsystemAllowAnyHost calls nvmf_subsystem_allow_any_host. Turning it off disconnects
// nobody.
func (c *Client) NvmfSubsystemAllowAnyHost(ctx context.Context, p NvmfSubsystemAllowAnyHostParams) error {
	return c.Call(ctx, "nvmf_subsystem_allow_any_host", p, nil)
}

// NvmfGetSubsystemsParams are the params of nvmf_get_subsystems. Zero params list all
// subsystems (the discovery subsystem included); an unknown NQN fails with ErrNotFound.
type NvmfGetSubsystemsParams struct {
	NQN     string `json:"nqn,omitempty"`
	TgtName string `json:"tgt_name,omitempty"`
}

// Subsystem is one element of nvmf_get_subsystems.
type Subsystem struct {
	NQN             string                `json:"nqn"`
	Subtype         string                `json:"subtype"` // NVMe or Discovery
	ListenAddresses []SubsystemListenAddr `json:"listen_addresses"`
	AllowAnyHost    bool                  `json:"allow_any_host"`
	Hosts           []SubsystemHost       `json:"hosts"`
	SerialNumber    string                `json:"serial_number,omitempty"`
	ModelNumber     string                `json:"model_number,omitempty"`
	MaxNamespaces   uint32                `json:"max_namespaces,omitempty"`
	MinCntlID       uint16                `json:"min_cntlid,omitempty"`
	MaxCntlID       uint16                `json:"max_cntlid,omitempty"`
	Namespaces      []SubsystemNamespace  `json:"namespaces,omitempty"`
}

// SubsystemHost is an allowed host of a subsystem.
type SubsystemHost struct {
	NQN string `json:"nqn"`
}

// SubsystemListenAddr is a listen address as nvmf_get_subsystems reports it (upper-cased).
type SubsystemListenAddr struct {
	// Deprecated: Transport duplicates TRType and is gone in SPDK 24.09.
	Transport string `json:"transport,omitempty"`
	TRType    string `json:"trtype"`
	AdrFam    string `json:"adrfam"`
	TRAddr    string `json:"traddr"`
	TRSvcID   string `json:"trsvcid"`
}

// SubsystemNamespace is a namespace of a subsystem. BdevName is the real bdev name (the UUID
// for lvols).
type SubsystemNamespace struct {
	NSID     uint32 `json:"nsid"`
	BdevName string `json:"bdev_name"`
	Name     string `json:"name"`
	NGUID    string `json:"nguid,omitempty"`
	EUI64    string `json:"eui64,omitempty"`
	UUID     string `json:"uuid,omitempty"`
	ANAGrpID uint32 `json:"anagrpid,omitempty"`
}

// NvmfGetSubsystems calls nvmf_get_subsystems.
func (c *Client) NvmfGetSubsystems(ctx context.Context, p NvmfGetSubsystemsParams) ([]Subsystem, error) {
	var out []Subsystem
	err := c.Call(ctx, "nvmf_get_subsystems", optional(p, NvmfGetSubsystemsParams{}),
		fastList[Subsystem]{&out, (*fastParser).subsystem})
	return out, err
}

// NvmfController is one element of nvmf_subsystem_get_controllers.
type NvmfController struct {
	CntlID      uint16 `json:"cntlid"`
	HostNQN     string `json:"hostnqn"`
	HostID      string `json:"hostid"`
	NumIOQpairs uint32 `json:"num_io_qpairs"`
}

// NvmfSubsystemGetControllers calls nvmf_subsystem_get_controllers.
func (c *Client) NvmfSubsystemGetControllers(ctx context.Context, p NQNParams) ([]NvmfController, error) {
	var out []NvmfController
	err := c.Call(ctx, "nvmf_subsystem_get_controllers", p, &out)
	return out, err
}

// Qpair is one element of nvmf_subsystem_get_qpairs.
type Qpair struct {
	CntlID        uint16      `json:"cntlid"`
	QID           uint16      `json:"qid"`
	State         string      `json:"state"`
	ListenAddress TransportID `json:"listen_address"`
	ANAState      string      `json:"ana_state,omitempty"`
}

// NvmfSubsystemGetQpairs calls nvmf_subsystem_get_qpairs.
func (c *Client) NvmfSubsystemGetQpairs(ctx context.Context, p NQNParams) ([]Qpair, error) {
	var out []Qpair
	err := c.Call(ctx, "nvmf_subsystem_get_qpairs", p, &out)
	return out, err
}

// Listener is one element of nvmf_subsystem_get_listeners. With ANA reporting on, SPDK
// reports either one ANAState (older releases) or one state per ANA group in ANAStates.
type Listener struct {
	Address   TransportID        `json:"address"`
	ANAState  string             `json:"ana_state,omitempty"`
	ANAStates []ListenerANAState `json:"ana_states,omitempty"`
}

// ListenerANAState is the ANA state of one ANA group on a listener.
type ListenerANAState struct {
	ANAGroup uint32 `json:"ana_group"`
	ANAState string `json:"ana_state"`
}

// State returns the listener's ANA state for group grp (1-based), or "" when not reported.
func (l Listener) State(grp uint32) string {
	for _, s := range l.ANAStates {
		if s.ANAGroup == grp {
			return s.ANAState
		}
	}
	return l.ANAState
}

// NvmfSubsystemGetListeners calls nvmf_subsystem_get_listeners.
func (c *Client) NvmfSubsystemGetListeners(ctx context.Context, p NQNParams) ([]Listener, error) {
	var out []Listener
	err := c.Call(ctx, "nvmf_subsystem_get_listeners", p, fastList[Listener]{&out, (*fastParser).listener})
	return out, err
}
