package segments

import (
	"encoding/json"
	"net/http"

	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
	maxSegmentBody  = 1 << 20
)

// Routes is the part of the HTTP server the module registers on.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the segments API.
type HTTP struct{ svc *Service }

// NewHTTP returns the API over svc.
func NewHTTP(svc *Service) *HTTP { return &HTTP{svc: svc} }

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("POST /api/v1/segments", httpapi.Create(maxSegmentBody, h.svc.Create, func(x *Segment) string { return "/api/v1/segments/" + x.ID }))
	r.HandleAPI("GET /api/v1/segments", h.list)
	r.HandleAPI("POST /api/v1/segments/preview", h.preview)
	r.HandleAPI("GET /api/v1/segments/{id}", h.get)
	r.HandleAPI("PATCH /api/v1/segments/{id}", h.update)
	r.HandleAPI("DELETE /api/v1/segments/{id}", h.delete)
	r.HandleAPI("POST /api/v1/segments/{id}/evaluate", h.evaluate)
	r.HandleAPI("GET /api/v1/segments/{id}/members", h.members)
}

type nameCursor struct {
	After string `json:"n"`
}

func (h *HTTP) list(w http.ResponseWriter, r *http.Request) {
	var cur nameCursor
	limit, err := pageParams(r, &cur)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	segs, err := h.svc.List(r.Context(), httpapi.TenantID(r.Context()), cur.After, limit+1)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	next := ""
	if len(segs) > limit {
		segs = segs[:limit]
		next = httpapi.EncodeCursor(nameCursor{After: segs[len(segs)-1].Name})
	}
	httpapi.WritePage(w, segs, next)
}

// pageParams reads limit and cursor (into cur), refusing other parameters.
func pageParams(r *http.Request, cur any) (int, error) {
	if err := httpapi.CheckParams(r.URL.Query(), "limit", "cursor"); err != nil {
		return 0, err
	}
	limit, err := httpapi.ParseLimit(r, defaultPageSize, maxPageSize)
	if err != nil {
		return 0, err
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		if err := httpapi.DecodeCursor(c, cur); err != nil {
			return 0, err
		}
	}
	return limit, nil
}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	seg, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	httpapi.Respond(w, r, seg, err)
}

func (h *HTTP) update(w http.ResponseWriter, r *http.Request) {
	var in Input
	if err := httpapi.DecodeJSON(w, r, &in, maxSegmentBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	seg, err := h.svc.Update(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), in)
	httpapi.Respond(w, r, seg, err)
}

func (h *HTTP) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.Delete(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// evaluate runs a full evaluation now and answers with its outcome.
func (h *HTTP) evaluate(w http.ResponseWriter, r *http.Request) {
	ev, err := h.svc.Evaluate(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), nil)
	httpapi.Respond(w, r, ev, err)
}

func (h *HTTP) preview(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Rules json.RawMessage `json:"rules"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, maxSegmentBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	p, err := h.svc.Preview(r.Context(), httpapi.TenantID(r.Context()), body.Rules)
	httpapi.Respond(w, r, p, err)
}

type memberCursor struct {
	After string `json:"c"`
}

func (h *HTTP) members(w http.ResponseWriter, r *http.Request) {
	var cur memberCursor
	limit, err := pageParams(r, &cur)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	ms, err := h.svc.Members(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), cur.After, limit+1)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	next := ""
	if len(ms) > limit {
		ms = ms[:limit]
		next = httpapi.EncodeCursor(memberCursor{After: ms[len(ms)-1].ContactID})
	}
	httpapi.WritePage(w, ms, next)
}
