package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Authenticator resolves an API key to the tenant it belongs to. A key that
// is unknown, malformed or revoked should be reported as a fault.Unauthorized
// error; any other error (the database is down) is answered as such, never as
// a 401, so callers do not throw away good keys during an outage.
type Authenticator interface {
	Authenticate(ctx context.Context, apiKey string) (tenantID string, err error)
}

// Options configure a Server. Zero values get the defaults documented on
// each field.
type Options struct {
	// Addr is the listen address, host:port; ":0" picks a free port (see Addr).
	Addr string
	// Logger receives access logs and panics (default slog.Default()).
	Logger *slog.Logger
	// Auth checks API keys for routes registered with HandleAPI. HandleAPI
	// panics without it.
	Auth Authenticator
	// Metrics is where the HTTP metrics are registered. When nil, Gatherer
	// is used if it is also a Registerer, else a private registry that
	// /metrics serves.
	Metrics prometheus.Registerer
	// Gatherer is what /metrics serves. When nil, Metrics is used if it is
	// also a Gatherer (as *prometheus.Registry is).
	Gatherer prometheus.Gatherer
	// Ready reports whether the process can take traffic (database, bus);
	// /readyz answers 503 with its error. Nil means always ready.
	Ready func(context.Context) error
	// ReadyTimeout bounds one Ready call (default 5s).
	ReadyTimeout time.Duration
	// Idempotency keeps the answers of POSTs sent with an Idempotency-Key;
	// nil leaves the header without effect.
	Idempotency IdempotencyStore

	// ReadHeaderTimeout (default 10s) guards against slow-loris clients.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request (default 1m).
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response; 0 (the default) means none,
	// because streamed exports may legitimately run long. Handlers bound
	// their own work through the request context.
	WriteTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (default 2m).
	IdleTimeout time.Duration
}

// Server is the process's HTTP server. Register routes before Start.
type Server struct {
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *httpMetrics
	srv     *http.Server

	mu       sync.Mutex
	patterns map[string]bool
	listener net.Listener
	done     chan error
}

// New builds a Server with the built-in routes /healthz, /readyz and /metrics.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		if r, ok := opts.Gatherer.(prometheus.Registerer); ok {
			opts.Metrics = r
		}
	}
	if opts.Metrics == nil {
		reg := prometheus.NewRegistry()
		opts.Metrics = reg
		if opts.Gatherer == nil {
			opts.Gatherer = reg
		}
	}
	if opts.Gatherer == nil {
		if g, ok := opts.Metrics.(prometheus.Gatherer); ok {
			opts.Gatherer = g
		} else {
			opts.Gatherer = prometheus.NewRegistry()
		}
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 5 * time.Second
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = time.Minute
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		mux:      http.NewServeMux(),
		metrics:  newHTTPMetrics(opts.Metrics),
		done:     make(chan error, 1),
		patterns: map[string]bool{},
	}
	s.Handle("GET /healthz", http.HandlerFunc(s.healthz))
	s.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	s.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s.srv = &http.Server{
		Addr:              opts.Addr,
		Handler:           s,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// HandleAPI registers h for pattern (a ServeMux pattern such as
// "GET /api/v1/contacts/{id}") behind API-key authentication: h runs only
// for a valid key, with the tenant in the context (TenantID).
func (s *Server) HandleAPI(pattern string, h http.HandlerFunc) {
	if s.opts.Auth == nil {
		panic("httpapi: HandleAPI " + pattern + " needs Options.Auth")
	}
	if strings.HasPrefix(pattern, http.MethodPost+" ") {
		h = s.idempotent(h)
	}
	s.route(pattern, s.authenticate(h))
}

// Handle registers a public route, one that authenticates by other means
// (provider webhooks check signatures) or not at all.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.route(pattern, h)
}

func (s *Server) route(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h) // panics on an invalid or conflicting pattern, as it should at start-up
	s.mu.Lock()
	s.patterns[pattern] = true
	s.mu.Unlock()
}

func (s *Server) registered(pattern string) bool {
	if pattern == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.patterns[pattern]
}

// Start listens on Options.Addr and serves in the background until Shutdown.
// It returns once the listener is bound, so Addr is valid afterwards.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("http listen on %s: %w", s.opts.Addr, err)
	}
	s.mu.Lock()
	s.listener = ln
	s.mu.Unlock()
	s.log.Info("http server listening", "addr", ln.Addr().String())
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else {
			s.log.Error("http server stopped", "err", err)
		}
		s.done <- err
	}()
	return nil
}

// Addr returns the bound address after Start ("127.0.0.1:41234" for ":0"),
// or Options.Addr before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return s.opts.Addr
	}
	return s.listener.Addr().String()
}

// Done delivers the serve loop's result once it ends: nil after Shutdown,
// the error when serving failed on its own.
func (s *Server) Done() <-chan error { return s.done }

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends; then it closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeStatus(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.ReadyTimeout)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			// Written directly rather than through WriteError: a probe that
			// fails during start-up is expected and must not log at error level.
			writeStatus(w, http.StatusServiceUnavailable, ErrorBody{Error: ErrorDetail{
				Code: "not_ready", Message: "not ready: " + err.Error(),
			}})
			return
		}
	}
	writeStatus(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeStatus(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
