package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

func TestWriteErrorMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"internal fault", fault.New(fault.Internal, "broken", "it broke"), http.StatusInternalServerError, "broken"},
		{"invalid", fault.New(fault.Invalid, "invalid_email", "email must contain @"), http.StatusBadRequest, "invalid_email"},
		{"not found", fault.New(fault.NotFound, "contact_not_found", "no contact c1"), http.StatusNotFound, "contact_not_found"},
		{"conflict", fault.New(fault.Conflict, "duplicate_email", "email taken"), http.StatusConflict, "duplicate_email"},
		{"unauthorized", fault.New(fault.Unauthorized, "invalid_api_key", "bad key"), http.StatusUnauthorized, "invalid_api_key"},
		{"forbidden", fault.New(fault.Forbidden, "forbidden", "not yours"), http.StatusForbidden, "forbidden"},
		{"too large", fault.New(fault.TooLarge, "import_too_large", "too many rows"), http.StatusRequestEntityTooLarge, "import_too_large"},
		{"unavailable", fault.New(fault.Unavailable, "bus_down", "retry"), http.StatusServiceUnavailable, "bus_down"},
		{"wrapped fault", fmt.Errorf("create contact: %w", fault.New(fault.Conflict, "duplicate_email", "email taken")), http.StatusConflict, "duplicate_email"},
		{"store not found", fmt.Errorf("get: %w", store.ErrNotFound), http.StatusNotFound, "not_found"},
		{"event too large", fmt.Errorf("publish: %w", event.ErrTooLarge), http.StatusRequestEntityTooLarge, "event_too_large"},
		{"max bytes", &http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge, "payload_too_large"},
		{"deadline", context.DeadlineExceeded, http.StatusServiceUnavailable, "timeout"},
		{"plain error", errors.New("boom"), http.StatusInternalServerError, "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			r = r.WithContext(event.WithCorrelationID(r.Context(), "corr-1"))
			w := httptest.NewRecorder()
			httpapi.WriteError(w, r, tt.err)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			if eb.Error.Code != tt.wantCode || eb.Error.Message == "" || eb.Error.CorrelationID != "corr-1" {
				t.Errorf("error = %+v, want code %q, a message and correlationId corr-1", eb.Error, tt.wantCode)
			}
			if tt.name == "plain error" && strings.Contains(w.Body.String(), "boom") {
				t.Error("an internal error's text leaked to the client")
			}
		})
	}
}

func TestParseLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query   string
		want    int
		wantErr bool
	}{
		{"", 50, false},
		{"limit=1", 1, false},
		{"limit=200", 200, false},
		{"limit=0", 0, true},
		{"limit=-3", 0, true},
		{"limit=201", 0, true},
		{"limit=ten", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/x?"+tt.query, nil)
			got, err := httpapi.ParseLimit(r, 50, 200)
			if tt.wantErr {
				fe, ok := fault.As(err)
				if !ok || fe.Kind != fault.Invalid || fe.Code != "invalid_limit" || !strings.Contains(fe.Message, "1 to 200") {
					t.Fatalf("err = %v, want fault.Invalid invalid_limit naming the range", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLimit = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

type position struct {
	CreatedAt int64  `json:"c"`
	ID        string `json:"i"`
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	in := position{CreatedAt: 1700000000000, ID: "0190-abc"}
	s := httpapi.EncodeCursor(in)
	if strings.ContainsAny(s, "+/=") {
		t.Errorf("cursor %q is not URL-safe", s)
	}
	var out position
	if err := httpapi.DecodeCursor(s, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"not base64":     "!!!",
		"not JSON":       "bm90IGpzb24",                                // "not json"
		"unknown fields": httpapi.EncodeCursor(map[string]int{"x": 1}), // not a position
		"wrong type":     httpapi.EncodeCursor(map[string]string{"c": "yesterday"}),
	}
	for name, cursor := range tests {
		t.Run(name, func(t *testing.T) {
			var p position
			err := httpapi.DecodeCursor(cursor, &p)
			fe, ok := fault.As(err)
			if !ok || fe.Kind != fault.Invalid || fe.Code != "invalid_cursor" {
				t.Fatalf("err = %v, want fault.Invalid invalid_cursor", err)
			}
		})
	}
}

func TestWritePage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		items []string
		next  string
		want  string
	}{
		{"middle page", []string{"a", "b"}, "abc", `{"data":["a","b"],"nextCursor":"abc"}`},
		{"last page", []string{"c"}, "", `{"data":["c"]}`},
		{"empty", nil, "", `{"data":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			httpapi.WritePage(w, tt.items, tt.next)
			if got := strings.TrimSpace(w.Body.String()); got != tt.want || w.Code != http.StatusOK {
				t.Errorf("WritePage = %d %s, want 200 %s", w.Code, got, tt.want)
			}
		})
	}
}

// TestListWalksEveryPage: following nextCursor from the first page visits
// every item once, in order; a bad cursor or limit is a 400.
func TestListWalksEveryPage(t *testing.T) {
	t.Parallel()
	items := []int{1, 2, 3, 4, 5, 6, 7}
	serve := func(query string) (int, httpapi.Page[int]) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/things?"+query, nil)
		httpapi.List(w, r, 3, 10,
			func(after *int, limit int) ([]int, error) {
				var out []int
				for _, it := range items {
					if (after == nil || it > *after) && len(out) < limit {
						out = append(out, it)
					}
				}
				return out, nil
			},
			func(last int) int { return last })
		var p httpapi.Page[int]
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		return w.Code, p
	}
	var seen []int
	query := ""
	for pages := 0; ; pages++ {
		code, p := serve(query)
		if code != http.StatusOK || pages > 3 {
			t.Fatalf("page %d: %d %v", pages, code, p)
		}
		seen = append(seen, p.Data...)
		if p.NextCursor == "" {
			break
		}
		query = "cursor=" + p.NextCursor
	}
	if fmt.Sprint(seen) != fmt.Sprint(items) {
		t.Fatalf("walked %v, want %v", seen, items)
	}
	if code, p := serve("limit=7"); code != http.StatusOK || len(p.Data) != 7 || p.NextCursor != "" {
		t.Fatalf("one page of all: %d %v", code, p)
	}
	for _, bad := range []string{"cursor=%21%21", "limit=0", "limit=11"} {
		if code, _ := serve(bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, code)
		}
	}
}

func TestIfMatchVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header string
		want   int64
		bad    bool
	}{
		{"", 0, false},
		{"3", 3, false},
		{`"12"`, 12, false},
		{`W/"1"`, 0, true},
		{"0", 0, true},
		{"abc", 0, true},
	} {
		r := httptest.NewRequest("PUT", "/x", nil)
		if tc.header != "" {
			r.Header.Set("If-Match", tc.header)
		}
		got, err := httpapi.IfMatchVersion(r, "workflow")
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("If-Match %q: %d, %v", tc.header, got, err)
		}
		if fe, ok := fault.As(err); tc.bad && (!ok || fe.Code != "invalid_if_match" || !strings.Contains(fe.Message, "workflow's version")) {
			t.Errorf("If-Match %q: error %v", tc.header, err)
		}
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	type input struct {
		Name string `json:"name"`
	}
	type thing struct {
		ID, Tenant, Name string
	}
	var calls int
	h := httpapi.Create(64, func(ctx context.Context, tenant string, in input) (*thing, error) {
		calls++
		if in.Name == "" {
			return nil, fault.New(fault.Invalid, "name_required", "give the thing a name")
		}
		return &thing{ID: "t1", Tenant: tenant, Name: in.Name}, nil
	}, func(x *thing) string { return "/api/v1/things/" + x.ID })
	for _, tc := range []struct {
		name, body   string
		status       int
		location     string
		calls        int
		bodyContains string
	}{
		{name: "created", body: `{"name": "box"}`, status: 201, location: "/api/v1/things/t1", calls: 1, bodyContains: `"Tenant":"tenant-a"`},
		{name: "invalid JSON", body: `{"name": `, status: 400, bodyContains: `"code":"invalid_json"`},
		{name: "unknown field", body: `{"nam": "box"}`, status: 400},
		{name: "oversized", body: `{"name": "` + strings.Repeat("x", 100) + `"}`, status: 413},
		{name: "refused by the service", body: `{"name": ""}`, status: 400, calls: 1, bodyContains: `"code":"name_required"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = 0
			r := httptest.NewRequest("POST", "/api/v1/things", strings.NewReader(tc.body))
			r = r.WithContext(httpapi.WithTenant(r.Context(), "tenant-a"))
			w := httptest.NewRecorder()
			h(w, r)
			if w.Code != tc.status || w.Header().Get("Location") != tc.location || calls != tc.calls {
				t.Fatalf("status %d, Location %q, %d calls; want %d, %q, %d (body %s)", w.Code, w.Header().Get("Location"), calls, tc.status, tc.location, tc.calls, w.Body)
			}
			if !strings.Contains(w.Body.String(), tc.bodyContains) {
				t.Fatalf("body %s lacks %s", w.Body, tc.bodyContains)
			}
		})
	}
}
