package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vda-io/vda/internal/version"
)

// Namespace prefixes every VDA metric.
const Namespace = "vda"

// ReadyTimeout bounds one readiness check.
const ReadyTimeout = 5 * time.Second

// NewRegistry returns a registry with the Go runtime and process
// collectors and vda_build_info (the module version and VCS revision as
// labels, value 1).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	v := version.Get()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "build_info",
			Help:        "The running binary's build: module version, VCS revision and Go version as labels, value 1.",
			ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "goversion": v.GoVersion}},
			func() float64 { return 1 }))
	return reg
}

// Handler serves g's metrics on /metrics, 200 on /healthz while the
// process runs, and on /readyz 200 when ready (nil: always) returns nil,
// else 503 with its error.
func Handler(g prometheus.Gatherer, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
			defer cancel()
			if err := ready(ctx); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve serves h on lis until ctx ends, then shuts down (waiting up to a
// few seconds for scrapes in flight). It returns nil after ctx ended.
func Serve(ctx context.Context, lis net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Register registers cs on reg, joining the errors (for the role packages:
// agentmetrics, monitormetrics, portalmetrics).
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Start listens on addr and serves h there (Serve) in a goroutine until ctx
// ends or stop is called; stop also waits for it. onErr, if set, gets a
// failure of the server (not its stop).
func Start(ctx context.Context, addr string, h http.Handler, onErr func(error)) (bound net.Addr, stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := Serve(ctx, lis, h); err != nil && onErr != nil {
			onErr(err)
		}
	}()
	return lis.Addr(), func() { cancel(); <-done }, nil
}

// Logger is what ServeFor logs through (hclog.Logger has both).
type Logger interface {
	Info(msg string, args ...any)
	Error(msg string, args ...any)
}

// ServeFor is a binary's --metrics-addr: it serves h on addr (Start) and
// returns a context derived from ctx that ends if the metrics server
// fails, so the binary stops rather than run unobserved; stop ends the
// server and waits for it.
func ServeFor(ctx context.Context, log Logger, addr string, h http.Handler) (context.Context, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	bound, stop, err := Start(ctx, addr, h, func(err error) {
		log.Error("metrics server failed", "error", err)
		cancel()
	})
	if err != nil {
		cancel()
		return nil, nil, err
	}
	log.Info("serving metrics", "addr", bound.String())
	return ctx, func() { stop(); cancel() }, nil
}
