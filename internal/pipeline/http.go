package pipeline

import (
	"net/http"

	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// Routes is the part of the HTTP server the module registers on.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the pipeline API.
type HTTP struct {
	svc     *Service
	sandbox *Sandbox
}

// NewHTTP returns the API over svc; sandbox (may be nil) serves the
// sandbox inspection route.
func NewHTTP(svc *Service, sandbox *Sandbox) *HTTP { return &HTTP{svc: svc, sandbox: sandbox} }

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("POST /api/v1/messages", h.send)
	r.HandleAPI("GET /api/v1/messages/{id}", h.get)
	r.HandleAPI("POST /api/v1/messages/test", h.sendTest)
	r.HandleAPI("GET /api/v1/suppressions", h.listSuppressions)
	r.HandleAPI("POST /api/v1/suppressions", h.suppress)
	r.HandleAPI("DELETE /api/v1/suppressions/{channel}/{address}", h.unsuppress)
	if h.sandbox != nil {
		r.HandleAPI("GET /api/v1/sandbox/messages", h.sandboxMessages)
	}
}

// send answers 202 for a new message and 200 with the first one when the
// same source, contact and channel were asked for before.
func (h *HTTP) send(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := httpapi.DecodeJSON(w, r, &req, 0); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	m, created, err := h.svc.Enqueue(r.Context(), httpapi.TenantID(r.Context()), req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/messages/"+m.ID)
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	httpapi.WriteJSON(w, status, m)
}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	m, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, m)
}

type keyCursor struct {
	After string `json:"a"`
}

// page reads limit and cursor, refusing parameters outside extra.
func page(r *http.Request, extra ...string) (int, string, error) {
	q := r.URL.Query()
	if err := httpapi.CheckParams(q, append([]string{"limit", "cursor"}, extra...)...); err != nil {
		return 0, "", err
	}
	limit, err := httpapi.ParseLimit(r, defaultPageSize, maxPageSize)
	if err != nil {
		return 0, "", err
	}
	var cur keyCursor
	if c := q.Get("cursor"); c != "" {
		if err := httpapi.DecodeCursor(c, &cur); err != nil {
			return 0, "", err
		}
	}
	return limit, cur.After, nil
}

func (h *HTTP) listSuppressions(w http.ResponseWriter, r *http.Request) {
	limit, after, err := page(r, "channel")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	list, err := h.svc.Suppressions(r.Context(), httpapi.TenantID(r.Context()), r.URL.Query().Get("channel"), after, limit+1)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		last := list[len(list)-1]
		next = httpapi.EncodeCursor(keyCursor{After: last.Channel + " " + last.Address})
	}
	httpapi.WritePage(w, list, next)
}

func (h *HTTP) suppress(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Channel string `json:"channel"`
		Address string `json:"address"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, 0); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	sup, err := h.svc.Suppress(r.Context(), httpapi.TenantID(r.Context()), body.Channel, body.Address, SuppressManual)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, sup)
}

func (h *HTTP) unsuppress(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.Unsuppress(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("channel"), r.PathValue("address")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *HTTP) sandboxMessages(w http.ResponseWriter, r *http.Request) {
	limit, before, err := page(r, "to")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	list, err := h.sandbox.List(r.Context(), httpapi.TenantID(r.Context()), r.URL.Query().Get("to"), before, limit+1)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = httpapi.EncodeCursor(keyCursor{After: list[len(list)-1].ID})
	}
	httpapi.WritePage(w, list, next)
}
