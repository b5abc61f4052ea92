package inbox

import (
	"net/http"
	"slices"
	"strings"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
	maxBody         = 16 << 10
	// maxReplyBody leaves room for the longest email reply, escaped.
	maxReplyBody = 512 << 10
)

// Routes is the part of the HTTP server the module registers on.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the inbox API.
type HTTP struct{ svc *Service }

// NewHTTP returns the API over svc.
func NewHTTP(svc *Service) *HTTP { return &HTTP{svc: svc} }

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("GET /api/v1/inbox/threads", h.list)
	r.HandleAPI("GET /api/v1/inbox/threads/{id}", h.get)
	r.HandleAPI("POST /api/v1/inbox/threads/{id}/status", h.status)
	r.HandleAPI("POST /api/v1/inbox/threads/{id}/assign", h.assign)
	r.HandleAPI("POST /api/v1/inbox/threads/{id}/reply", h.reply)
}

func (h *HTTP) reply(w http.ResponseWriter, r *http.Request) {
	var in ReplyInput
	if err := httpapi.DecodeJSON(w, r, &in, maxReplyBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	m, err := h.svc.Reply(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), in)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, m)
}

func (h *HTTP) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := httpapi.CheckParams(q, "limit", "cursor", "status", "assigneeId", "contactId", "channel", "sla"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	f := Filter{Status: q.Get("status"), AssigneeID: q.Get("assigneeId"), ContactID: q.Get("contactId"), Channel: q.Get("channel"), SLA: q.Get("sla")}
	if f.SLA != "" && f.SLA != "due" && f.SLA != "warning" && f.SLA != "breached" {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_sla", "sla must be one of due, warning, breached (got %q)", f.SLA))
		return
	}
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_status", "status must be one of %s (got %q)", strings.Join(Statuses, ", "), f.Status))
		return
	}
	if f.Channel != "" && !event.ValidChannel(f.Channel) {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_channel", "channel must be one of %s (got %q)", strings.Join(event.Channels, ", "), f.Channel))
		return
	}
	tenant := httpapi.TenantID(r.Context())
	httpapi.List(w, r, defaultPageSize, maxPageSize,
		func(after *Cursor, limit int) ([]*Thread, error) {
			return h.svc.List(r.Context(), tenant, f, after, limit)
		},
		func(last *Thread) Cursor { return Cursor{LastMessageAt: last.LastMessageAt.UnixMilli(), ID: last.ID} })
}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	t, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	httpapi.Respond(w, r, t, err)
}

func (h *HTTP) status(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status string `json:"status"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, maxBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	t, err := h.svc.SetStatus(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), body.Status)
	httpapi.Respond(w, r, t, err)
}

func (h *HTTP) assign(w http.ResponseWriter, r *http.Request) {
	var body struct {
		AssigneeID string `json:"assigneeId"`
		AssignedBy string `json:"assignedBy"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, maxBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	t, err := h.svc.Assign(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), body.AssigneeID, body.AssignedBy)
	httpapi.Respond(w, r, t, err)
}
