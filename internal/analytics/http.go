package analytics

import (
	"net/http"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

// Range limits per interval: they bound the rows one request reads and
// returns (31 days x 24 hours, or about 1,100 days, per subject).
const (
	maxHourRange = 31 * 24 * time.Hour
	maxDayRange  = 1096 * 24 * time.Hour // three years, one of them leap

	defaultHourRange = 24 * time.Hour
	defaultDayRange  = 30 * 24 * time.Hour
)

// Routes is the part of the HTTP server the module registers on; the app
// passes the httpapi server, which authenticates and sets the tenant.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the analytics API.
type HTTP struct {
	st  Store
	now func() time.Time
}

// NewHTTP returns the API on st; now supplies the default end of a range
// (time.Now when nil).
func NewHTTP(st Store, now func() time.Time) *HTTP {
	if now == nil {
		now = time.Now
	}
	return &HTTP{st: st, now: now}
}

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("GET /api/v1/analytics/events/counts", h.eventCounts)
}

// CountsResponse is the body of GET /api/v1/analytics/events/counts. From
// and To are the range actually read: From truncated to the interval, To
// rounded up to it.
type CountsResponse struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Interval Interval  `json:"interval"`
	Subject  string    `json:"subject"`
	Buckets  []Bucket  `json:"buckets"`
	Total    int64     `json:"total"`
}

func (h *HTTP) eventCounts(w http.ResponseWriter, r *http.Request) {
	tenant := httpapi.TenantID(r.Context())
	if tenant == "" {
		httpapi.WriteError(w, r, fault.New(fault.Unauthorized, "unauthorized", "send an API key in the Authorization header"))
		return
	}
	q, err := h.parseCountQuery(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	buckets, err := h.st.Counts(r.Context(), tenant, q)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	width, _ := q.Interval.ms() // validated by parseCountQuery
	from, to := bucketRange(q, width)
	resp := CountsResponse{
		From:     time.UnixMilli(from).UTC(),
		To:       time.UnixMilli(to).UTC(),
		Interval: q.Interval,
		Subject:  q.Subject,
		Buckets:  buckets,
	}
	for _, b := range buckets {
		resp.Total += b.Count
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (h *HTTP) parseCountQuery(r *http.Request) (CountQuery, error) {
	v := r.URL.Query()
	q := CountQuery{Interval: Interval(v.Get("interval")), Subject: v.Get("subject")}
	if q.Interval == "" {
		q.Interval = Hour
	}
	if _, err := q.Interval.ms(); err != nil {
		return q, err
	}
	if _, err := parseSubject(q.Subject); err != nil {
		return q, err
	}

	limit, span := maxHourRange, defaultHourRange
	if q.Interval == Day {
		limit, span = maxDayRange, defaultDayRange
	}
	var err error
	if q.To, err = httpapi.ParseTime(v.Get("to"), "to", h.now()); err != nil {
		return q, err
	}
	if q.From, err = httpapi.ParseTime(v.Get("from"), "from", q.To.Add(-span)); err != nil {
		return q, err
	}
	if !q.From.Before(q.To) {
		return q, fault.New(fault.Invalid, "invalid_range", "from (%s) must be before to (%s)",
			q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if d := q.To.Sub(q.From); d > limit {
		hint := "narrow the range or use interval=day"
		if q.Interval == Day {
			hint = "narrow the range"
		}
		return q, fault.New(fault.Invalid, "range_too_large", "the range spans %.1f days; %s counts cover at most %d days: %s",
			d.Hours()/24, q.Interval, int(limit/(24*time.Hour)), hint)
	}
	return q, nil
}
