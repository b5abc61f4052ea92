package analytics

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// muxRoutes registers on a plain ServeMux; the tests set the tenant
// themselves, as the httpapi server's auth middleware would.
type muxRoutes struct{ *http.ServeMux }

func (m muxRoutes) HandleAPI(pattern string, h http.HandlerFunc) { m.Handle(pattern, h) }

type countsBody struct {
	Data  CountsResponse      `json:"data"`
	Error httpapi.ErrorDetail `json:"error"`
}

// get calls the API as tenant and decodes the answer.
func get(t *testing.T, h http.Handler, tenant, target string) (int, countsBody) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if tenant != "" {
		req = req.WithContext(httpapi.WithTenant(req.Context(), tenant))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body countsBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: response is not JSON: %v: %s", target, err, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", target, ct)
	}
	return rec.Code, body
}

func TestHTTPEventCounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := newStore(t, db)
		now := base.Add(50*time.Hour + 30*time.Minute) // day 3, 02:30
		insert(t, st,
			mkEvent(t, tenantA, "contact.created", now.Add(-10*time.Minute)),
			mkEvent(t, tenantA, "contact.created", now.Add(-time.Hour)),
			mkEvent(t, tenantA, "contact.updated", now.Add(-time.Hour)),
			mkEvent(t, tenantA, "campaign.started", now.Add(-time.Hour)),
			mkEvent(t, tenantA, "contact.created", now.Add(-40*time.Hour)), // outside the default 24 h
			mkEvent(t, tenantB, "contact.created", now.Add(-time.Hour)),
		)
		mux := http.NewServeMux()
		NewHTTP(st, func() time.Time { return now }).RegisterRoutes(muxRoutes{mux})

		hourOf := func(d time.Duration) time.Time { return now.Add(d).Truncate(time.Hour) }
		cases := []struct {
			name        string
			tenant      string
			query       string
			wantFrom    time.Time
			wantTo      time.Time
			wantBuckets []Bucket
		}{
			{"defaults: the last 24 hours by hour, current hour included", tenantA, "",
				hourOf(-24 * time.Hour), hourOf(time.Hour),
				[]Bucket{
					{"campaign.started", hourOf(-time.Hour), 1},
					{"contact.created", hourOf(-time.Hour), 1},
					{"contact.updated", hourOf(-time.Hour), 1},
					{"contact.created", hourOf(0), 1},
				}},
			{"day defaults: the last 30 days", tenantA, "?interval=day",
				base.Add(50*time.Hour - 30*24*time.Hour).Truncate(24 * time.Hour), base.Add(72 * time.Hour),
				[]Bucket{
					{"contact.created", base, 1},
					{"campaign.started", base.Add(48 * time.Hour), 1},
					{"contact.created", base.Add(48 * time.Hour), 2},
					{"contact.updated", base.Add(48 * time.Hour), 1},
				}},
			{"prefix and explicit range", tenantA,
				"?subject=contact.%3E&interval=day&from=2026-03-10T00:00:00Z&to=2026-03-12T00:00:00Z",
				base, base.Add(48 * time.Hour),
				[]Bucket{{"contact.created", base, 1}}},
			{"exact subject, offset timestamps", tenantA,
				"?subject=contact.updated&from=2026-03-12T02:00:00%2B01:00&to=2026-03-12T03:00:00Z",
				base.Add(49 * time.Hour), base.Add(51 * time.Hour),
				[]Bucket{{"contact.updated", hourOf(-time.Hour), 1}}},
			{"tenant B sees only its own", tenantB, "",
				hourOf(-24 * time.Hour), hourOf(time.Hour),
				[]Bucket{{"contact.created", hourOf(-time.Hour), 1}}},
			{"a tenant without events gets an empty list", "tenant-c", "",
				hourOf(-24 * time.Hour), hourOf(time.Hour),
				[]Bucket{}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				code, body := get(t, mux, c.tenant, "/api/v1/analytics/events/counts"+c.query)
				if code != http.StatusOK {
					t.Fatalf("status %d: %+v", code, body.Error)
				}
				d := body.Data
				if !d.From.Equal(c.wantFrom) || !d.To.Equal(c.wantTo) {
					t.Errorf("range [%s, %s), want [%s, %s)", d.From, d.To, c.wantFrom, c.wantTo)
				}
				if d.Buckets == nil || !slices.EqualFunc(d.Buckets, c.wantBuckets, func(a, b Bucket) bool {
					return a.Subject == b.Subject && a.Start.Equal(b.Start) && a.Count == b.Count
				}) {
					t.Errorf("buckets %v\nwant    %v", d.Buckets, c.wantBuckets)
				}
				if d.Total != total(c.wantBuckets) {
					t.Errorf("total %d, want %d", d.Total, total(c.wantBuckets))
				}
			})
		}
	})
}

func TestHTTPEventCountsJSONShape(t *testing.T) {
	t.Parallel()
	st := newStore(t, storetest.Open(t, store.SQLite))
	insert(t, st, mkEvent(t, tenantA, "contact.created", base.Add(time.Minute)))
	mux := http.NewServeMux()
	NewHTTP(st, nil).RegisterRoutes(muxRoutes{mux})
	req := httptest.NewRequest(http.MethodGet,
		"/api/v1/analytics/events/counts?from=2026-03-10T00:00:00Z&to=2026-03-10T01:00:00Z&subject=contact.created", nil)
	req = req.WithContext(httpapi.WithTenant(req.Context(), tenantA))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	want := `{"data":{"from":"2026-03-10T00:00:00Z","to":"2026-03-10T01:00:00Z","interval":"hour","subject":"contact.created",` +
		`"buckets":[{"subject":"contact.created","start":"2026-03-10T00:00:00Z","count":1}],"total":1}}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("body\n%s\nwant\n%s", got, want)
	}
}

func TestHTTPEventCountsRejectsBadQueries(t *testing.T) {
	t.Parallel()
	st := newStore(t, storetest.Open(t, store.SQLite))
	mux := http.NewServeMux()
	NewHTTP(st, func() time.Time { return base }).RegisterRoutes(muxRoutes{mux})
	cases := []struct {
		query      string
		wantCode   string
		wantInText string
	}{
		{"?from=yesterday", "invalid_timestamp", "from"},
		{"?to=2026-03-10", "invalid_timestamp", "2026-01-02T15:04:05Z"},
		{"?from=2026-03-10T00:00:00+01:00", "invalid_timestamp", "%2B"},
		{"?from=2026-03-10T00:00:00Z&to=2026-03-10T00:00:00Z", "invalid_range", "must be before"},
		{"?from=2026-03-11T00:00:00Z&to=2026-03-10T00:00:00Z", "invalid_range", "must be before"},
		{"?interval=week", "invalid_interval", "use hour or day"},
		{"?interval=HOUR", "invalid_interval", "use hour or day"},
		{"?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:01Z", "range_too_large", "interval=day"},
		{"?interval=day&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "range_too_large", "at most 1096 days"},
		{"?subject=contact.*", "invalid_subject", "contact.>"},
		{"?subject=contact..created", "invalid_subject", "exact subject"},
		{"?subject=contact%3E", "invalid_subject", "prefix ending in .>"},
	}
	for _, c := range cases {
		code, body := get(t, mux, tenantA, "/api/v1/analytics/events/counts"+c.query)
		if code != http.StatusBadRequest || body.Error.Code != c.wantCode || !strings.Contains(body.Error.Message, c.wantInText) {
			t.Errorf("%s: %d %+v; want 400 %s mentioning %q", c.query, code, body.Error, c.wantCode, c.wantInText)
		}
	}
	// The boundaries themselves are allowed.
	for _, q := range []string{
		"?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z",
		"?interval=day&from=2023-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
	} {
		if code, body := get(t, mux, tenantA, "/api/v1/analytics/events/counts"+q); code != http.StatusOK {
			t.Errorf("%s: %d %+v; want 200", q, code, body.Error)
		}
	}
}

func TestHTTPEventCountsNeedsATenant(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	NewHTTP(newStore(t, storetest.Open(t, store.SQLite)), nil).RegisterRoutes(muxRoutes{mux})
	code, body := get(t, mux, "", "/api/v1/analytics/events/counts")
	if code != http.StatusUnauthorized || body.Error.Code != "unauthorized" {
		t.Errorf("%d %+v; want 401 unauthorized", code, body.Error)
	}
}
