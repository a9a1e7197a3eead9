package csi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/vda-io/vda/api/portalpb"
)

// DriverName is the CSI driver's name (GetPluginInfo, CSIDriver object).
const DriverName = "csi.vda.io"

// Version is reported by GetPluginInfo.
const Version = "0.1.0"

// Volume name prefix of the DAs this driver creates.
const daPrefix = "csi-"

// descPrefix starts the description of a DA this driver created; the CSI
// name follows.
const descPrefix = "csi.vda.io/name="

// VolumeName is the DA name of the CSI volume called name: "csi-" and 32
// hex digits of its SHA-256, a valid DA name whatever the CSI name is.
func VolumeName(name string) string {
	return daPrefix + nameHash(name)
}

// Config configures a Driver. Which services it serves follows from what
// is set: Portal for the controller, Connector and NodeID for the node.
type Config struct {
	// Portal is the VDA portal (controller mode).
	Portal pb.PortalClient
	// DefaultVolumeBytes is the size of a volume whose request has no
	// capacity range (1 GiB if 0).
	DefaultVolumeBytes int64
	// NodeID is this node's host NQN (node mode): its CSI node ID.
	NodeID string
	// Connector attaches volumes to this node (node mode).
	Connector Connector
	// MaxVolumesPerNode is reported by NodeGetInfo (0: no limit).
	MaxVolumesPerNode int64
	// Location is this node's VDA location (node mode), reported by
	// NodeGetInfo as its topology segment (TopologyKey); empty: none, and
	// the node can use only volumes created without topology
	// requirements. It must be a Kubernetes label value (ValidateLocation).
	Location string
	// Logger gets the driver's lifecycle (volumes created, deleted,
	// modified, published, staged) at Info and every call (Interceptor) at
	// Debug; silent if nil.
	Logger hclog.Logger
}

// Driver serves the CSI services of Config.
type Driver struct {
	cfg Config
	csipb.UnimplementedIdentityServer
	csipb.UnimplementedControllerServer
	csipb.UnimplementedNodeServer
	locks keyLocks
	log   hclog.Logger
}

// New checks cfg and returns a Driver.
func New(cfg Config) (*Driver, error) {
	if cfg.Portal == nil && cfg.Connector == nil {
		return nil, errors.New("csi: neither controller (Portal) nor node (Connector) configured")
	}
	if cfg.Connector != nil {
		if err := validateHostNQN(cfg.NodeID); err != nil {
			return nil, fmt.Errorf("csi: node ID: %w", err)
		}
		if cfg.Location != "" {
			if err := ValidateLocation(cfg.Location); err != nil {
				return nil, fmt.Errorf("csi: %w", err)
			}
		}
	}
	if cfg.DefaultVolumeBytes <= 0 {
		cfg.DefaultVolumeBytes = 1 << 30
	}
	d := &Driver{cfg: cfg, log: cfg.Logger}
	if d.log == nil {
		d.log = hclog.NewNullLogger()
	}
	d.locks.m = map[string]chan struct{}{}
	return d, nil
}

// Register adds the driver's services to s: Identity always, Controller
// with a Portal, Node with a Connector.
func (d *Driver) Register(s *grpc.Server) {
	csipb.RegisterIdentityServer(s, d)
	if d.cfg.Portal != nil {
		csipb.RegisterControllerServer(s, d)
	}
	if d.cfg.Connector != nil {
		csipb.RegisterNodeServer(s, d)
	}
}

// Interceptor logs every call at Debug: its method, volume, result code
// and duration (install it with grpc.UnaryInterceptor).
func (d *Driver) Interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !d.log.IsDebug() {
		return h(ctx, req)
	}
	start := time.Now()
	resp, err := h(ctx, req)
	args := []any{"method", info.FullMethod, "code", status.Code(err), "duration", time.Since(start)}
	if v, ok := req.(interface{ GetVolumeId() string }); ok && v.GetVolumeId() != "" {
		args = append(args, "volume", v.GetVolumeId())
	}
	if err != nil {
		args = append(args, "error", status.Convert(err).Message())
	}
	d.log.Debug("csi call", args...)
	return resp, err
}

// Listen listens on a CSI endpoint, unix:///path (a stale socket file is
// removed) or tcp://host:port.
func Listen(endpoint string) (net.Listener, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		if path == "" {
			return nil, fmt.Errorf("endpoint %q: no socket path", endpoint)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("endpoint %q: %w", endpoint, err)
		}
		return net.Listen("unix", path)
	case "tcp":
		return net.Listen("tcp", u.Host)
	}
	return nil, fmt.Errorf("endpoint %q: scheme must be unix or tcp", endpoint)
}

// keyLocks serialises operations on one volume (the CO may retry while a
// call is still running: the retry waits, or gives up with Aborted).
type keyLocks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (k *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	for {
		k.muLock()
		ch, busy := k.m[key]
		if !busy {
			ch = make(chan struct{})
			k.m[key] = ch
			k.muUnlock()
			return func() {
				k.muLock()
				delete(k.m, key)
				close(ch)
				k.muUnlock()
			}, nil
		}
		k.muUnlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, status.Errorf(codes.Aborted, "an operation on %s is in progress", key)
		}
	}
}

func (k *keyLocks) muLock()   { k.mu.Lock() }
func (k *keyLocks) muUnlock() { k.mu.Unlock() }

// validateHostNQN checks a host NQN (a node ID).
func validateHostNQN(nqn string) error {
	if !strings.HasPrefix(nqn, "nqn.") || len(nqn) > 223 {
		return fmt.Errorf("%q is not an NVMe qualified name (nqn.yyyy-mm.domain:...)", nqn)
	}
	return nil
}

// portalErr passes a portal status on with context, so the CO sees the
// portal's code (NotFound, FailedPrecondition, ...).
func portalErr(err error, format string, a ...any) error {
	st, ok := status.FromError(err)
	if !ok {
		return status.Errorf(codes.Internal, format+": %v", append(a, err)...)
	}
	return status.Errorf(st.Code(), format+": %s", append(a, st.Message())...)
}

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }
