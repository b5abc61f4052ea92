// Package apitest calls a module's HTTP handlers in tests as an
// authenticated tenant, without the server's auth middleware (whose own
// tests cover the 401 paths).
package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

// Mux is a ServeMux modules can register their routes on.
type Mux struct{ *http.ServeMux }

// NewMux returns an empty Mux.
func NewMux() Mux { return Mux{http.NewServeMux()} }

// HandleAPI registers h as the httpapi server would, minus authentication.
func (m Mux) HandleAPI(pattern string, h http.HandlerFunc) { m.Handle(pattern, h) }

// Response is a recorded answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode unmarshals the body into v, failing the test when it is not JSON.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d is not the expected JSON: %v: %s", r.Status, err, r.Body)
	}
}

// ErrorCode returns the code of an error response, "" for other bodies.
func (r Response) ErrorCode() string {
	var b httpapi.ErrorBody
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

// Do sends method target with body (JSON unless header says otherwise) as
// tenant ("" for none) to h.
func Do(t testing.TB, h http.Handler, tenant, method, target, body string, header ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if tenant != "" {
		req = req.WithContext(httpapi.WithTenant(req.Context(), tenant))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return Response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}
