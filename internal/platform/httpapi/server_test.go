package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

// fakeAuth knows a fixed set of keys. It stands in for tenant.Service at our
// own edge, where the contract is only "key -> tenant or Unauthorized".
type fakeAuth map[string]string

func (f fakeAuth) Authenticate(_ context.Context, key string) (string, error) {
	if key == "explode" {
		return "", errors.New("database is down")
	}
	if t, ok := f[key]; ok {
		return t, nil
	}
	return "", fault.New(fault.Unauthorized, "invalid_api_key", "unknown or revoked API key")
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testServer struct {
	base string
	logs *syncBuffer
	srv  *httpapi.Server
}

// startServer starts a real Server on a free loopback port with a few
// routes used across the tests, and shuts it down when t ends.
func startServer(t *testing.T, ready func(context.Context) error) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	srv := httpapi.New(httpapi.Options{
		Addr:    "127.0.0.1:0",
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Auth:    fakeAuth{"good": "tenant-1"},
		Metrics: reg,
		Ready:   ready,
	})
	srv.HandleAPI("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{
			"tenantId":      httpapi.TenantID(r.Context()),
			"correlationId": event.CorrelationID(r.Context()),
		})
	})
	srv.HandleAPI("GET /api/v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	srv.Handle("GET /public/panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("handler bug")
	}))
	srv.Handle("GET /public/correlation", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, event.CorrelationID(r.Context()))
	}))
	srv.Handle("POST /public/decode", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
		}
		if err := httpapi.DecodeJSON(w, r, &in, 64); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, in.Name)
	}))
	if err := srv.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-srv.Done(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testServer{base: "http://" + srv.Addr(), logs: logs, srv: srv}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (ts *testServer) do(t *testing.T, method, path string, header map[string]string, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, ts.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func errorCode(t *testing.T, body string) httpapi.ErrorDetail {
	t.Helper()
	var eb httpapi.ErrorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return eb.Error
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	tests := []struct {
		name       string
		auth       string
		wantStatus int
		wantCode   string
	}{
		{"no header", "", http.StatusUnauthorized, "missing_api_key"},
		{"basic scheme", "Basic x", http.StatusUnauthorized, "invalid_api_key"},
		{"bearer without key", "Bearer ", http.StatusUnauthorized, "missing_api_key"},
		{"unknown key", "Bearer wrong", http.StatusUnauthorized, "invalid_api_key"},
		{"authenticator failure is not a 401", "Bearer explode", http.StatusInternalServerError, "internal"},
		{"valid key", "Bearer good", http.StatusOK, ""},
		{"scheme is case-insensitive", "bearer good", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			res := ts.do(t, http.MethodGet, "/api/v1/whoami", h, "")
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", res.status, tt.wantStatus, res.body)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if tt.wantCode == "" {
				var got struct {
					Data map[string]string `json:"data"`
				}
				if err := json.Unmarshal([]byte(res.body), &got); err != nil {
					t.Fatal(err)
				}
				if got.Data["tenantId"] != "tenant-1" {
					t.Errorf("tenant in context = %q, want tenant-1", got.Data["tenantId"])
				}
				return
			}
			d := errorCode(t, res.body)
			if d.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", d.Code, tt.wantCode)
			}
			if tt.wantStatus == http.StatusUnauthorized {
				if !strings.Contains(d.Message, "Bearer") && tt.wantCode == "missing_api_key" {
					t.Errorf("message %q does not say how to send the key", d.Message)
				}
				if res.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	if !strings.Contains(ts.logs.String(), `"tenantId":"tenant-1"`) {
		t.Errorf("access log has no tenantId:\n%s", ts.logs.String())
	}
}

func TestCorrelationID(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	tests := []struct {
		name     string
		sent     string
		wantSame bool
	}{
		{"accepted", "req-42:abc.DEF_9", true},
		{"generated when absent", "", false},
		{"replaced when it has a space", "bad id", false},
		{"replaced when too long", strings.Repeat("a", 129), false},
		{"longest accepted", strings.Repeat("a", 128), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.sent != "" {
				h[httpapi.CorrelationHeader] = tt.sent
			}
			res := ts.do(t, http.MethodGet, "/public/correlation", h, "")
			echoed := res.header.Get(httpapi.CorrelationHeader)
			var body struct {
				Data string `json:"data"`
			}
			if err := json.Unmarshal([]byte(res.body), &body); err != nil {
				t.Fatal(err)
			}
			if body.Data != echoed {
				t.Errorf("context has %q, response header %q", body.Data, echoed)
			}
			if tt.wantSame {
				if echoed != tt.sent {
					t.Errorf("echoed %q, want %q", echoed, tt.sent)
				}
				return
			}
			if echoed == tt.sent || !httpapi.ValidCorrelationID(echoed) || len(echoed) != 36 {
				t.Errorf("generated id %q: want a fresh UUID", echoed)
			}
		})
	}
}

func TestPanicBecomes500(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	res := ts.do(t, http.MethodGet, "/public/panic", map[string]string{httpapi.CorrelationHeader: "panic-1"}, "")
	if res.status != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", res.status)
	}
	d := errorCode(t, res.body)
	if d.Code != "internal" || d.CorrelationID != "panic-1" {
		t.Errorf("error = %+v, want code internal with correlationId panic-1", d)
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "handler bug") || !strings.Contains(logs, `"status":500`) {
		t.Errorf("panic or its 500 not logged:\n%s", logs)
	}
	// The server survives.
	if res := ts.do(t, http.MethodGet, "/healthz", nil, ""); res.status != http.StatusOK {
		t.Errorf("healthz after panic = %d", res.status)
	}
}

func TestUnmatchedRoutes(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantCode           string
		wantAllow          string
	}{
		{"unknown api path", http.MethodGet, "/api/v1/nope", http.StatusNotFound, "route_not_found", ""},
		{"unknown path", http.MethodGet, "/nope", http.StatusNotFound, "route_not_found", ""},
		{"wrong method on api route", http.MethodDelete, "/api/v1/whoami", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
		{"wrong method on builtin", http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "method_not_allowed", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, tt.method, tt.path, nil, "")
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", res.status, tt.wantStatus, res.body)
			}
			if d := errorCode(t, res.body); d.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", d.Code, tt.wantCode)
			}
			if got := res.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var readyErr error
	ts := startServer(t, func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		return readyErr
	})
	if res := ts.do(t, http.MethodGet, "/healthz", nil, ""); res.status != http.StatusOK || strings.TrimSpace(res.body) != `{"status":"ok"}` {
		t.Errorf("healthz = %d %s", res.status, res.body)
	}
	if res := ts.do(t, http.MethodGet, "/readyz", nil, ""); res.status != http.StatusOK {
		t.Errorf("readyz while ready = %d %s", res.status, res.body)
	}
	mu.Lock()
	readyErr = errors.New("database: connection refused")
	mu.Unlock()
	res := ts.do(t, http.MethodGet, "/readyz", nil, "")
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("readyz while not ready = %d, want 503", res.status)
	}
	if d := errorCode(t, res.body); d.Code != "not_ready" || !strings.Contains(d.Message, "connection refused") {
		t.Errorf("readyz error = %+v, want not_ready naming the reason", d)
	}
	// The process is still alive even when not ready.
	if res := ts.do(t, http.MethodGet, "/healthz", nil, ""); res.status != http.StatusOK {
		t.Errorf("healthz while not ready = %d", res.status)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	ts.do(t, http.MethodGet, "/api/v1/things/123", map[string]string{"Authorization": "Bearer good"}, "")
	ts.do(t, http.MethodGet, "/api/v1/things/456", map[string]string{"Authorization": "Bearer good"}, "")
	ts.do(t, http.MethodGet, "/random/probe/path", nil, "")
	res := ts.do(t, http.MethodGet, "/metrics", nil, "")
	if res.status != http.StatusOK {
		t.Fatalf("/metrics = %d", res.status)
	}
	for _, want := range []string{
		`http_requests_total{method="GET",route="GET /api/v1/things/{id}",status="200"} 2`,
		`http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`http_request_duration_seconds_count{method="GET",route="GET /api/v1/things/{id}"} 2`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(res.body, "things/123") {
		t.Error("/metrics carries a raw path")
	}
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name       string
		header     map[string]string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"valid", jsonCT, `{"name":"Ada"}`, http.StatusOK, ""},
		{"no content type is accepted", nil, `{"name":"Ada"}`, http.StatusOK, ""},
		{"invalid JSON", jsonCT, `{"name":`, http.StatusBadRequest, "invalid_json"},
		{"syntax error", jsonCT, `{"name" "x"}`, http.StatusBadRequest, "invalid_json"},
		{"wrong type", jsonCT, `{"name":5}`, http.StatusBadRequest, "invalid_json"},
		{"unknown field", jsonCT, `{"nmae":"Ada"}`, http.StatusBadRequest, "unknown_field"},
		{"empty body", jsonCT, ``, http.StatusBadRequest, "invalid_json"},
		{"two values", jsonCT, `{"name":"a"} {"name":"b"}`, http.StatusBadRequest, "invalid_json"},
		{"oversized body", jsonCT, `{"name":"` + strings.Repeat("x", 100) + `"}`, http.StatusRequestEntityTooLarge, "payload_too_large"},
		{"not JSON content type", map[string]string{"Content-Type": "text/plain"}, `{}`, http.StatusBadRequest, "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(t, http.MethodPost, "/public/decode", tt.header, tt.body)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", res.status, tt.wantStatus, res.body)
			}
			if tt.wantCode != "" {
				if d := errorCode(t, res.body); d.Code != tt.wantCode || d.Message == "" {
					t.Errorf("error = %+v, want code %q with a message", d, tt.wantCode)
				}
			}
		})
	}
}

func TestStartOnBusyAddress(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	other := httpapi.New(httpapi.Options{Addr: ts.srv.Addr(), Logger: slog.New(slog.DiscardHandler)})
	if err := other.Start(context.Background()); err == nil {
		t.Fatal("second server on the same address started")
	}
}
