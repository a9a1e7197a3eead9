package etcdembed

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"

	"github.com/vda-io/vda/internal/hclogzap"
	"github.com/vda-io/vda/store"
	"github.com/vda-io/vda/store/etcdstore"
)

// maxSocketPath is the longest unix socket path Linux accepts (108 bytes
// including the terminating NUL).
const maxSocketPath = 107

// ErrEmbedded is wrapped by failures to start or run the embedded server.
var ErrEmbedded = errors.New("etcdembed: embedded etcd")

// ErrDirInUse is returned (wrapped in ErrEmbedded) by Start when another
// server, in this process or another, runs on the data directory. etcd
// itself would wait for that one to stop, without a word.
var ErrDirInUse = errors.New("data directory in use by another embedded etcd")

// lockName is the file in the data directory that a running server holds
// an exclusive flock on.
const lockName = "vda-etcd.lock"

// lockDir takes the data directory's lock without waiting.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: lock %s: %w", ErrEmbedded, dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s: %w (stop the other portal or dev cluster, or give this one another directory)",
				ErrEmbedded, dir, ErrDirInUse)
		}
		return nil, fmt.Errorf("%w: lock %s: %w", ErrEmbedded, dir, err)
	}
	return f, nil
}

// Config configures an etcd server started in-process.
type Config struct {
	// Dir is the data directory (required). It is created (mode 0700) if
	// missing; restarting on the same Dir keeps every committed key.
	Dir string
	// Name is the member name; "" means "vda".
	Name string
	// Socket is the unix socket clients connect to; "" means
	// <Dir>/etcd.sock. Its path must be at most 107 bytes.
	Socket string
	// HeartbeatInterval and ElectionTimeout are etcd's raft timings; zero
	// means etcd's defaults (100ms and 1s). They also set the shortest
	// lease etcd grants (1.5 election timeouts, rounded up to a second).
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// AutoCompactRevisions keeps that many recent revisions of history
	// for watches and compacts older ones; 0 disables auto-compaction.
	AutoCompactRevisions int64
	// QuotaBackendBytes caps the database size; 0 means etcd's default (2 GiB).
	QuotaBackendBytes int64
	// StartTimeout bounds the wait for the server to become ready; 0 means 1 minute.
	StartTimeout time.Duration
	// Logger receives lifecycle logs; nil means silent.
	Logger hclog.Logger
}

// DefaultConfig returns the configuration embedded:// uses for dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, AutoCompactRevisions: 100000, StartTimeout: time.Minute}
}

func (c *Config) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: %w: no data directory", ErrEmbedded, store.ErrInvalidArgument)
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return fmt.Errorf("%w: data directory: %w", ErrEmbedded, err)
	}
	c.Dir = dir
	if c.Name == "" {
		c.Name = "vda"
	}
	if c.Socket == "" {
		c.Socket = filepath.Join(c.Dir, "etcd.sock")
	}
	if len(c.Socket) > maxSocketPath {
		return fmt.Errorf("%w: %w: socket path %q longer than %d bytes (set Socket)",
			ErrEmbedded, store.ErrInvalidArgument, c.Socket, maxSocketPath)
	}
	if c.HeartbeatInterval < 0 || c.ElectionTimeout < 0 || c.AutoCompactRevisions < 0 ||
		c.QuotaBackendBytes < 0 || c.StartTimeout < 0 {
		return fmt.Errorf("%w: %w: negative setting", ErrEmbedded, store.ErrInvalidArgument)
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = time.Minute
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return nil
}

// Server is a running in-process etcd server (a single-member cluster).
type Server struct {
	etcd      *embed.Etcd
	endpoint  string
	log       hclog.Logger
	clientLog hclog.Logger
	quiet     *atomic.Bool // set on Close: shutdown noise is logged at debug
	lock      *os.File     // the data directory's, held while the server runs
	once      sync.Once
}

// Start starts an etcd server on cfg.Dir and waits until it serves
// requests (or ctx ends, or cfg.StartTimeout passes). Its peer listener is
// an abstract unix socket (no port, no file): a single member never dials
// its peers.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEmbedded, err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.Named("embedded-etcd").With("dir", cfg.Dir)
	ec := embedConfig(cfg)
	quiet := new(atomic.Bool)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(hclogzap.Quiet(log.Named("etcd"), quiet))
	e, err := embed.StartEtcd(ec)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("%w: start on %s: %w", ErrEmbedded, cfg.Dir, err)
	}
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	fail := func(err error) (*Server, error) {
		e.Close()
		_ = lock.Close()
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return fail(fmt.Errorf("%w: start on %s: %w", ErrEmbedded, cfg.Dir, err))
	case <-timer.C:
		return fail(fmt.Errorf("%w: not ready after %v", ErrEmbedded, cfg.StartTimeout))
	case <-ctx.Done():
		return fail(fmt.Errorf("%w: start: %w", ErrEmbedded, ctx.Err()))
	}
	log.Info("embedded etcd ready", "socket", cfg.Socket)
	return &Server{etcd: e, endpoint: "unix://" + cfg.Socket, log: log, clientLog: cfg.Logger.Named("etcd-client"),
		quiet: quiet, lock: lock}, nil
}

func embedConfig(cfg Config) *embed.Config {
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	client := url.URL{Scheme: "unix", Path: cfg.Socket}
	// Host-less unix URL: the listener binds an abstract socket.
	peer := url.URL{Scheme: "unix", Path: filepath.Join(cfg.Dir, "peer")}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	ec.InitialClusterToken = "vda-embedded"
	ec.EnableGRPCGateway = false
	ec.Metrics = "basic"
	if cfg.HeartbeatInterval > 0 {
		ec.TickMs = uint(cfg.HeartbeatInterval.Milliseconds())
	}
	if cfg.ElectionTimeout > 0 {
		ec.ElectionMs = uint(cfg.ElectionTimeout.Milliseconds())
	}
	if cfg.AutoCompactRevisions > 0 {
		ec.AutoCompactionMode = embed.CompactorModeRevision
		ec.AutoCompactionRetention = fmt.Sprint(cfg.AutoCompactRevisions)
	}
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	return ec
}

// Endpoint is the client URL of the server ("unix:///.../etcd.sock").
func (e *Server) Endpoint() string { return e.endpoint }

// Client returns a new etcd client connected to the server; the caller
// closes it.
func (e *Server) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{e.endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      hclogzap.New(e.clientLog),
	})
}

// InProcessClient returns an etcd client that calls the server's API in
// this process, without gRPC or a socket: what a Store in the server's own
// process uses (on the dev cluster, about a quarter of the store's cost is
// gRPC and the socket). The same API, so the same answers and errors. The
// caller ends it with closeFn (the client's own Close reports the
// cancellation of its context as an error).
func (e *Server) InProcessClient() (cli *clientv3.Client, closeFn func() error) {
	cli = v3client.New(e.etcd.Server)
	return cli, func() error {
		if err := cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
}

// Done is closed when the server has stopped (after Close, or on a fatal
// error).
func (e *Server) Done() <-chan struct{} { return e.etcd.Server.StopNotify() }

// Close stops the server; it is idempotent. Every acknowledged write is
// already on disk (etcd fsyncs its log before acknowledging).
func (e *Server) Close() error {
	e.once.Do(func() {
		e.quiet.Store(true)
		e.etcd.Close()
		_ = e.lock.Close() // releases the data directory
		e.log.Info("embedded etcd stopped")
	})
	return nil
}

func init() {
	store.Register("embedded", openEmbedded)
}

// URLConfig turns an embedded:// URL into the server configuration
// and the key prefix.
func URLConfig(u *url.URL) (Config, string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", store.ErrInvalidURI, store.Redacted(u), fmt.Sprintf(format, args...))
	}
	if u.Scheme != "embedded" {
		return Config{}, "", bad("scheme is not embedded")
	}
	if u.Host != "" {
		return Config{}, "", bad("want embedded:///absolute/dir (three slashes)")
	}
	if u.Path == "" || u.Path == "/" {
		return Config{}, "", bad("no data directory")
	}
	q := u.Query()
	for k := range q {
		if k != "prefix" && k != "socket" {
			return Config{}, "", bad("unknown parameter %q", k)
		}
	}
	cfg := DefaultConfig(u.Path)
	cfg.Socket = q.Get("socket")
	prefix := q.Get("prefix")
	if err := store.ValidatePrefix(prefix); err != nil {
		return Config{}, "", bad("prefix: %v", err)
	}
	return cfg, prefix, nil
}

func openEmbedded(ctx context.Context, u *url.URL, o store.OpenOptions) (store.Store, error) {
	cfg, prefix, err := URLConfig(u)
	if err != nil {
		return nil, err
	}
	cfg.Logger = o.Logger
	return Open(ctx, cfg, prefix)
}

// Open starts an embedded etcd server and returns a Store on it
// under prefix, through its in-process client (InProcessClient; other
// processes still reach the server on its socket); closing the Store stops
// the server.
func Open(ctx context.Context, cfg Config, prefix string) (*etcdstore.Store, error) {
	e, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cli, closeCli := e.InProcessClient()
	s, err := etcdstore.New(cli, etcdstore.Config{Prefix: prefix, Logger: cfg.Logger, SingleMember: true})
	if err != nil {
		_ = closeCli()
		_ = e.Close()
		return nil, err
	}
	s.OnClose(e.Close)
	s.OnClose(closeCli)
	return s, nil
}

// URI returns the embedded:// URI of a server whose data lives in
// dir, which may be relative (to the working directory).
func URI(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w: data directory %q: %w", store.ErrInvalidURI, dir, err)
	}
	return (&url.URL{Scheme: "embedded", Path: abs}).String(), nil
}
