package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
)

// CorrelationHeader carries the correlation id in requests and responses.
const CorrelationHeader = "X-Correlation-Id"

// unmatchedRoute labels requests that matched no pattern, so that scanners
// probing random paths cannot create a metric series per path.
const unmatchedRoute = "unmatched"

// requestInfo is filled in by inner layers (auth) for the access log, which
// runs outside them and cannot see their derived contexts.
type requestInfo struct {
	tenantID string
}

type infoKey struct{}

// ServeHTTP runs every request through the common middleware: correlation
// id, panic recovery, routing with JSON 404/405, access log and metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	corr := r.Header.Get(CorrelationHeader)
	if !ValidCorrelationID(corr) {
		corr = event.NewID()
	}
	info := &requestInfo{}
	ctx := event.WithCorrelationID(r.Context(), corr)
	ctx = context.WithValue(ctx, infoKey{}, info)
	r = r.WithContext(ctx)
	w.Header().Set(CorrelationHeader, corr)
	sw := &statusWriter{ResponseWriter: w}
	// Deferred in this order so the access log and metrics also record the
	// 500 written after a panic.
	defer s.observe(sw, r, info, start)
	defer s.recoverPanic(sw, r)
	s.dispatch(sw, r)
}

// ValidCorrelationID reports whether a caller-supplied correlation id may be
// adopted: 1-128 characters of [A-Za-z0-9._:-]. Anything else is replaced,
// because the id ends up in logs, headers and events.
func ValidCorrelationID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// dispatch routes r, answering unmatched paths and methods in JSON. The
// mux's own 404/405 answers are plain text, so they are run against a probe
// to learn which one it would be (and the Allow header), then rewritten.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusNotFound:
		writeErrorDetail(w, r, http.StatusNotFound, ErrorDetail{Code: "route_not_found",
			Message: fmt.Sprintf("no route for %s %s; see /api/v1/openapi.json for the routes this server has", r.Method, r.URL.Path)})
	case http.StatusMethodNotAllowed:
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeErrorDetail(w, r, http.StatusMethodNotAllowed, ErrorDetail{Code: "method_not_allowed",
			Message: fmt.Sprintf("%s does not accept %s; use %s", r.URL.Path, r.Method, allow)})
	default:
		h.ServeHTTP(w, r)
	}
}

func (s *Server) recoverPanic(w *statusWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		// The handler asked net/http to abort the connection; let it.
		panic(p)
	}
	s.log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()), "correlationId", event.CorrelationID(r.Context()))
	if w.wroteHeader {
		return // too late for an error body; the client sees a truncated response
	}
	writeErrorDetail(w, r, http.StatusInternalServerError, internalDetail())
}

func (s *Server) observe(w *statusWriter, r *http.Request, info *requestInfo, start time.Time) {
	elapsed := time.Since(start)
	status := w.status
	if !w.wroteHeader {
		// A handler that writes nothing sends 200.
		status = http.StatusOK
	}
	route := unmatchedRoute
	if s.registered(r.Pattern) {
		// The mux also sets Pattern to the raw path when it redirects to a
		// cleaned path; only registered patterns become label values.
		route = r.Pattern
	}
	method := metricMethod(r.Method)
	s.metrics.requests.WithLabelValues(method, route, fmt.Sprint(status)).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())

	level := slog.LevelInfo
	switch r.Pattern {
	case "GET /healthz", "GET /readyz", "GET /metrics":
		// Probes and scrapes arrive every few seconds; keep them out of the
		// default log level.
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Float64("durationMs", float64(elapsed.Microseconds())/1000),
		slog.Int64("bytes", w.bytes),
		slog.String("correlationId", event.CorrelationID(r.Context())),
	}
	if info.tenantID != "" {
		attrs = append(attrs, slog.String("tenantId", info.tenantID))
	}
	s.log.LogAttrs(r.Context(), level, "http request", attrs...)
}

// authenticate wraps h so it runs only for a valid API key, with the tenant
// in the request context.
func (s *Server) authenticate(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := bearerKey(r)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		tenantID, err := s.opts.Auth.Authenticate(r.Context(), key)
		if err == nil && tenantID == "" {
			err = fault.New(fault.Unauthorized, "invalid_api_key", "the API key is not valid; send a key issued by `alumoutreach tenant create` or `alumoutreach tenant key create`")
		}
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if info, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
			info.tenantID = tenantID
		}
		h(w, r.WithContext(WithTenant(r.Context(), tenantID)))
	})
}

func bearerKey(r *http.Request) (string, error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		return "", fault.New(fault.Unauthorized, "missing_api_key", "this endpoint needs an API key; send the header 'Authorization: Bearer <api key>'")
	}
	scheme, key, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fault.New(fault.Unauthorized, "invalid_api_key", "the Authorization header uses the %q scheme; send 'Authorization: Bearer <api key>'", scheme)
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return "", fault.New(fault.Unauthorized, "missing_api_key", "the Authorization header has no key after Bearer; send 'Authorization: Bearer <api key>'")
	}
	return key, nil
}

func internalDetail() ErrorDetail {
	return ErrorDetail{Code: "internal", Message: "internal error; the logs carry the details under this correlationId"}
}

// writeErrorDetail writes an error body the way WriteError does, for the
// server's own answers that are not errors from a handler.
func writeErrorDetail(w http.ResponseWriter, r *http.Request, status int, detail ErrorDetail) {
	detail.CorrelationID = event.CorrelationID(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: detail})
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 200 {
		// 1xx are interim responses; the final status comes later.
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// probeWriter captures what the mux's fallback handler would answer.
type probeWriter struct {
	header http.Header
	status int
}

func (p *probeWriter) Header() http.Header { return p.header }
func (p *probeWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *probeWriter) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	return &httpMetrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status.",
		}, []string{"method", "route", "status"})),
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"})),
	}
}

// register registers c, or returns the collector already registered under
// the same description, so that two servers may share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("httpapi: register metrics: %v", err))
	}
	return c
}

// metricMethod bounds the method label to the standard methods.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}
