package campaigns

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
	maxBody         = 64 << 10
)

// Routes is the part of the HTTP server the module registers on.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the campaigns API.
type HTTP struct{ svc *Service }

// NewHTTP returns the API over svc.
func NewHTTP(svc *Service) *HTTP { return &HTTP{svc: svc} }

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("POST /api/v1/campaigns", httpapi.Create(maxBody, h.svc.Create, func(x *Campaign) string { return "/api/v1/campaigns/" + x.ID }))
	r.HandleAPI("GET /api/v1/campaigns", h.list)
	r.HandleAPI("GET /api/v1/campaigns/{id}", h.get)
	r.HandleAPI("PATCH /api/v1/campaigns/{id}", h.update)
	r.HandleAPI("POST /api/v1/campaigns/{id}/schedule", h.schedule)
	r.HandleAPI("DELETE /api/v1/campaigns/{id}/schedule", h.action(h.svc.Unschedule))
	r.HandleAPI("POST /api/v1/campaigns/{id}/start", h.action(h.svc.Start))
	r.HandleAPI("POST /api/v1/campaigns/{id}/pause", h.action(h.svc.Pause))
	r.HandleAPI("POST /api/v1/campaigns/{id}/resume", h.action(h.svc.Resume))
	r.HandleAPI("POST /api/v1/campaigns/{id}/cancel", h.action(h.svc.Cancel))
	r.HandleAPI("POST /api/v1/campaigns/{id}/test", h.test)
	r.HandleAPI("GET /api/v1/campaigns/{id}/stats", h.stats)
	r.HandleAPI("GET /api/v1/campaigns/{id}/report", h.report)
}

func (h *HTTP) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := httpapi.CheckParams(q, "limit", "cursor", "status"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	status := q.Get("status")
	if status != "" && !slices.Contains(statuses, status) {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_status", "status must be one of %s (got %q)", strings.Join(statuses, ", "), status))
		return
	}
	tenant := httpapi.TenantID(r.Context())
	httpapi.List(w, r, defaultPageSize, maxPageSize,
		func(before *listCursor, limit int) ([]*Campaign, error) {
			return h.svc.List(r.Context(), tenant, status, before, limit)
		},
		func(last *Campaign) listCursor { return listCursor{CreatedAt: last.CreatedAt.UnixMilli(), ID: last.ID} })
}

var statuses = []string{StatusCreated, StatusScheduled, StatusStarted, StatusPaused, StatusCompleted, StatusCancelled}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	c, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	httpapi.Respond(w, r, c, err)
}

// update edits a campaign not yet started. If-Match, when sent, carries
// the version the edit was made from.
func (h *HTTP) update(w http.ResponseWriter, r *http.Request) {
	ifVersion, err := httpapi.IfMatchVersion(r, "campaign")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var in Input
	if err := httpapi.DecodeJSON(w, r, &in, maxBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := h.svc.Update(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), in, ifVersion)
	httpapi.Respond(w, r, c, err)
}

func (h *HTTP) schedule(w http.ResponseWriter, r *http.Request) {
	var sch Schedule
	if err := httpapi.DecodeJSON(w, r, &sch, maxBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := h.svc.Schedule(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), sch)
	httpapi.Respond(w, r, c, err)
}

// action serves a lifecycle transition without a body.
func (h *HTTP) action(do func(ctx context.Context, tenant, id string) (*Campaign, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := do(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
		httpapi.Respond(w, r, c, err)
	}
}

func (h *HTTP) test(w http.ResponseWriter, r *http.Request) {
	var req TestRequest
	if err := httpapi.DecodeJSON(w, r, &req, maxBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	res, err := h.svc.TestSend(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), req)
	httpapi.Respond(w, r, res, err)
}

func (h *HTTP) stats(w http.ResponseWriter, r *http.Request) {
	st, err := h.svc.Stats(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	httpapi.Respond(w, r, st, err)
}

func (h *HTTP) report(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := httpapi.CheckParams(q, "interval"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	interval := q.Get("interval")
	if interval == "" {
		interval = "hour"
	}
	step, ok := intervals[interval]
	if !ok {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_interval", "interval must be minute, hour or day (got %q)", interval))
		return
	}
	rep, err := h.svc.Report(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), interval, step)
	httpapi.Respond(w, r, rep, err)
}

var intervals = map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
