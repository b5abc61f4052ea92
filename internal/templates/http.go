package templates

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
	"github.com/alumoutreach/alumoutreach/internal/templates/render"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
	maxTemplateBody = 2 << 20
)

// ErrContactNotFound is what a ContactSource returns for an unknown contact.
var ErrContactNotFound = errors.New("contact not found")

// ContactSource reads a contact as templates render it; the app wires it
// to the contacts module, for previews on a real contact.
type ContactSource interface {
	TemplateContact(ctx context.Context, tenant, id string) (render.Contact, error)
}

// Routes is the part of the HTTP server the module registers on.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the templates API.
type HTTP struct {
	svc      *Service
	contacts ContactSource
}

// NewHTTP returns the API over svc; contacts (may be nil) serves previews
// for a contact id.
func NewHTTP(svc *Service, contacts ContactSource) *HTTP { return &HTTP{svc: svc, contacts: contacts} }

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("POST /api/v1/templates", httpapi.Create(maxTemplateBody, h.svc.Create, func(t *Template) string { return "/api/v1/templates/" + t.ID }))
	r.HandleAPI("GET /api/v1/templates", h.list)
	r.HandleAPI("GET /api/v1/templates/{id}", h.get)
	r.HandleAPI("PATCH /api/v1/templates/{id}", h.update)
	r.HandleAPI("DELETE /api/v1/templates/{id}", h.delete)
	r.HandleAPI("POST /api/v1/templates/{id}/activate", h.transition("activate"))
	r.HandleAPI("POST /api/v1/templates/{id}/archive", h.transition("archive"))
	r.HandleAPI("GET /api/v1/templates/{id}/versions/{version}", h.version)
	r.HandleAPI("POST /api/v1/templates/{id}/preview", h.preview)
	r.HandleAPI("POST /api/v1/templates/{id}/review", h.review)
}

func respond(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, status, v)
}

type nameCursor struct {
	After string `json:"n"`
}

func (h *HTTP) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := httpapi.CheckParams(q, "limit", "cursor", "channel", "status"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	limit, err := httpapi.ParseLimit(r, defaultPageSize, maxPageSize)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var cur nameCursor
	if c := q.Get("cursor"); c != "" {
		if err := httpapi.DecodeCursor(c, &cur); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	ts, err := h.svc.List(r.Context(), httpapi.TenantID(r.Context()), cur.After, q.Get("channel"), q.Get("status"), limit+1)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	next := ""
	if len(ts) > limit {
		ts = ts[:limit]
		next = httpapi.EncodeCursor(nameCursor{After: ts[len(ts)-1].Name})
	}
	httpapi.WritePage(w, ts, next)
}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	t, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	respond(w, r, http.StatusOK, t, err)
}

func (h *HTTP) version(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
	if err != nil {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_version", "a version is a positive whole number (got %q)", r.PathValue("version")))
		return
	}
	t, err := h.svc.GetVersion(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), v)
	respond(w, r, http.StatusOK, t, err)
}

func (h *HTTP) update(w http.ResponseWriter, r *http.Request) {
	var in Input
	if err := httpapi.DecodeJSON(w, r, &in, maxTemplateBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	t, err := h.svc.Update(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), in)
	respond(w, r, http.StatusOK, t, err)
}

func (h *HTTP) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.Delete(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *HTTP) transition(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := h.svc.Transition(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), action)
		respond(w, r, http.StatusOK, t, err)
	}
}

func (h *HTTP) review(w http.ResponseWriter, r *http.Request) {
	t, err := h.svc.SubmitReview(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	respond(w, r, http.StatusOK, t, err)
}

// PreviewRequest says whom to render a template for: a stored contact, or
// sample values (both empty renders with the template's defaults only).
type PreviewRequest struct {
	Version   int64            `json:"version"`
	ContactID string           `json:"contactId"`
	Contact   *PreviewContact  `json:"contact"`
	Campaign  *PreviewCampaign `json:"campaign"`
}

// PreviewContact is sample recipient data.
type PreviewContact struct {
	Email      string         `json:"email"`
	Phone      string         `json:"phone"`
	FirstName  string         `json:"firstName"`
	LastName   string         `json:"lastName"`
	Locale     string         `json:"locale"`
	TimeZone   string         `json:"timeZone"`
	Tags       []string       `json:"tags"`
	Attributes map[string]any `json:"attributes"`
}

// PreviewCampaign is sample campaign data.
type PreviewCampaign struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// previewUnsubscribeURL stands in for the recipient's link in previews.
const previewUnsubscribeURL = "https://example.invalid/unsubscribe/preview"

func (h *HTTP) preview(w http.ResponseWriter, r *http.Request) {
	var req PreviewRequest
	if r.ContentLength != 0 { // no body: render with the template's defaults only
		if err := httpapi.DecodeJSON(w, r, &req, maxTemplateBody); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	tenant := httpapi.TenantID(r.Context())
	data := &render.Data{MessageID: "preview", UnsubscribeURL: previewUnsubscribeURL}
	switch {
	case req.ContactID != "" && req.Contact != nil:
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_preview", "give contactId or contact, not both"))
		return
	case req.ContactID != "":
		if h.contacts == nil {
			httpapi.WriteError(w, r, fault.New(fault.Unavailable, "contacts_unavailable", "this instance does not run the contacts module; preview with sample contact data"))
			return
		}
		c, err := h.contacts.TemplateContact(r.Context(), tenant, req.ContactID)
		if errors.Is(err, ErrContactNotFound) {
			httpapi.WriteError(w, r, fault.New(fault.NotFound, "contact_not_found", "no contact %q in this tenant", req.ContactID))
			return
		}
		if err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
		data.Contact = c
	case req.Contact != nil:
		pc := req.Contact
		data.Contact = render.Contact{Email: pc.Email, Phone: pc.Phone, FirstName: pc.FirstName, LastName: pc.LastName,
			Locale: pc.Locale, TimeZone: pc.TimeZone, Tags: pc.Tags, Attributes: pc.Attributes}
	}
	if req.Campaign != nil {
		data.CampaignID, data.CampaignName = req.Campaign.ID, req.Campaign.Name
	}
	out, err := h.svc.Render(r.Context(), tenant, r.PathValue("id"), req.Version, data)
	respond(w, r, http.StatusOK, out, err)
}
