package workflows

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
	maxBody         = 256 << 10
)

// Routes is the part of the HTTP server the module registers on.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the workflows API.
type HTTP struct{ svc *Service }

// NewHTTP returns the API over svc.
func NewHTTP(svc *Service) *HTTP { return &HTTP{svc: svc} }

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("POST /api/v1/workflows", httpapi.Create(maxBody, h.svc.Create, func(x *Workflow) string { return "/api/v1/workflows/" + x.ID }))
	r.HandleAPI("GET /api/v1/workflows", h.list)
	r.HandleAPI("GET /api/v1/workflows/{id}", h.get)
	r.HandleAPI("PUT /api/v1/workflows/{id}", h.update)
	r.HandleAPI("POST /api/v1/workflows/{id}/activate", h.action(h.svc.Activate))
	r.HandleAPI("POST /api/v1/workflows/{id}/pause", h.action(h.svc.Pause))
	r.HandleAPI("GET /api/v1/workflows/{id}/stats", h.stats)
	r.HandleAPI("GET /api/v1/workflow-runs", h.listRuns)
	r.HandleAPI("GET /api/v1/workflow-runs/{id}", h.getRun)
	r.HandleAPI("POST /api/v1/workflow-events", h.postEvent)
}

// versionParam reads ?version=N (0 when absent).
func versionParam(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("version")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fault.New(fault.Invalid, "invalid_version", "version must be a positive integer (got %q)", v)
	}
	return n, nil
}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	if err := httpapi.CheckParams(r.URL.Query(), "version"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v, err := versionParam(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	wf, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), v)
	httpapi.Respond(w, r, wf, err)
}

// update stores a new version. If-Match, when sent, carries the version
// the edit was made from.
func (h *HTTP) update(w http.ResponseWriter, r *http.Request) {
	ifVersion, err := httpapi.IfMatchVersion(r, "workflow")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var in Input
	if err := httpapi.DecodeJSON(w, r, &in, maxBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	wf, err := h.svc.Update(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), in, ifVersion)
	httpapi.Respond(w, r, wf, err)
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
		func(before *ListCursor, limit int) ([]*Workflow, error) {
			return h.svc.List(r.Context(), tenant, status, before, limit)
		},
		func(last *Workflow) ListCursor { return ListCursor{CreatedAt: last.CreatedAt.UnixMilli(), ID: last.ID} })
}

func (h *HTTP) action(fn func(ctx context.Context, tenant, id string) (*Workflow, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		wf, err := fn(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
		httpapi.Respond(w, r, wf, err)
	}
}

func (h *HTTP) stats(w http.ResponseWriter, r *http.Request) {
	if err := httpapi.CheckParams(r.URL.Query(), "version"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	v, err := versionParam(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	st, err := h.svc.Stats(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), v)
	httpapi.Respond(w, r, st, err)
}

func (h *HTTP) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := httpapi.CheckParams(q, "limit", "cursor", "workflowId", "contactId", "status"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	f := RunFilter{WorkflowID: q.Get("workflowId"), ContactID: q.Get("contactId"), Status: q.Get("status")}
	if f.Status != "" && !slices.Contains(runStatuses, f.Status) {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_status", "status must be one of %s (got %q)", strings.Join(runStatuses, ", "), f.Status))
		return
	}
	tenant := httpapi.TenantID(r.Context())
	httpapi.List(w, r, defaultPageSize, maxPageSize,
		func(before *string, limit int) ([]*Run, error) {
			after := ""
			if before != nil {
				after = *before
			}
			return h.svc.ListRuns(r.Context(), tenant, f, after, limit)
		},
		func(last *Run) string { return last.ID })
}

func (h *HTTP) getRun(w http.ResponseWriter, r *http.Request) {
	run, err := h.svc.GetRun(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	httpapi.Respond(w, r, run, err)
}

// postEvent accepts a custom event; runs start on it asynchronously, so
// the answer is 202 with the event's id.
func (h *HTTP) postEvent(w http.ResponseWriter, r *http.Request) {
	var in event.WorkflowEventReceivedData
	if err := httpapi.DecodeJSON(w, r, &in, 64<<10); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	env, err := h.svc.PostEvent(r.Context(), httpapi.TenantID(r.Context()), in)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"eventId": env.ID, "correlationId": env.CorrelationID})
}
