package contacts

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

// Page sizes of the contact list.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
	// maxContactBody bounds one contact's JSON: 100 attributes of 2,000
	// characters fit with room to spare.
	maxContactBody = 512 << 10
)

// Routes is the part of the HTTP server the module registers on; the app
// passes the httpapi server, which authenticates and sets the tenant.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the contacts API.
type HTTP struct {
	svc     *Service
	imports *Importer
}

// NewHTTP returns the API over svc and its importer.
func NewHTTP(svc *Service, imports *Importer) *HTTP { return &HTTP{svc: svc, imports: imports} }

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("POST /api/v1/contacts", h.create)
	r.HandleAPI("GET /api/v1/contacts", h.list)
	r.HandleAPI("POST /api/v1/contacts/upsert", h.upsert)
	r.HandleAPI("GET /api/v1/contacts/{id}", h.get)
	r.HandleAPI("PATCH /api/v1/contacts/{id}", h.update)
	r.HandleAPI("DELETE /api/v1/contacts/{id}", h.delete)
	r.HandleAPI("POST /api/v1/contacts/{id}/erase", h.erase)
	r.HandleAPI("POST /api/v1/contacts/{id}/tags", h.addTags)
	r.HandleAPI("DELETE /api/v1/contacts/{id}/tags/{tag}", h.removeTag)
	r.HandleAPI("PUT /api/v1/contacts/{id}/consent/{channel}", h.setConsent)
	h.registerImportRoutes(r)
}

// readBody reads a JSON request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/merge-patch+json") {
		return nil, fault.New(fault.Invalid, "unsupported_media_type", "send the body as application/json (got %q)", ct)
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// readInput reads a create or upsert body.
func readInput(w http.ResponseWriter, r *http.Request) (Input, error) {
	body, err := readBody(w, r, maxContactBody)
	if err != nil {
		return Input{}, err
	}
	return ParseInput(body)
}

func (h *HTTP) create(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(w, r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := h.svc.Create(r.Context(), httpapi.TenantID(r.Context()), in)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteCreated(w, "/api/v1/contacts/"+c.ID, c)
}

// upsert answers 201 when it created the contact, 200 when it updated one.
func (h *HTTP) upsert(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(w, r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, created, err := h.svc.Upsert(r.Context(), httpapi.TenantID(r.Context()), in)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpapi.WriteJSON(w, status, c)
}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	c, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	httpapi.Respond(w, r, c, err)
}

// update applies a JSON merge patch. If-Match, when sent, carries the
// version the caller read ("3" or the ETag form "\"3\"").
func (h *HTTP) update(w http.ResponseWriter, r *http.Request) {
	ifVersion, err := httpapi.IfMatchVersion(r, "contact")
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	body, err := readBody(w, r, maxContactBody)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	f, err := ParsePatch(body)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := h.svc.Update(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), f, ifVersion)
	httpapi.Respond(w, r, c, err)
}

func (h *HTTP) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.Delete(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id")); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *HTTP) erase(w http.ResponseWriter, r *http.Request) {
	tenant, id := httpapi.TenantID(r.Context()), r.PathValue("id")
	if err := h.svc.Erase(r.Context(), tenant, id); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := h.svc.Get(r.Context(), tenant, id)
	httpapi.Respond(w, r, c, err)
}

func (h *HTTP) addTags(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, maxContactBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := h.svc.AddTags(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), body.Tags)
	httpapi.Respond(w, r, c, err)
}

func (h *HTTP) removeTag(w http.ResponseWriter, r *http.Request) {
	c, err := h.svc.RemoveTag(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), r.PathValue("tag"))
	httpapi.Respond(w, r, c, err)
}

func (h *HTTP) setConsent(w http.ResponseWriter, r *http.Request) {
	var in ConsentInput
	if err := httpapi.DecodeJSON(w, r, &in, maxContactBody); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	c, err := h.svc.SetConsent(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), r.PathValue("channel"), in)
	httpapi.Respond(w, r, c, err)
}

// listCursor is the position after the last contact of a page.
type listCursor struct {
	After string `json:"a"`
}

var listParams = []string{"limit", "cursor", "email", "phone", "tag", "attribute", "consent",
	"createdAfter", "createdBefore", "updatedAfter", "updatedBefore", "q"}

func (h *HTTP) list(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	cs, more, err := h.svc.List(r.Context(), httpapi.TenantID(r.Context()), f)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	next := ""
	if more {
		next = httpapi.EncodeCursor(listCursor{After: cs[len(cs)-1].ID})
	}
	httpapi.WritePage(w, cs, next)
}

func parseFilter(r *http.Request) (Filter, error) {
	v := r.URL.Query()
	if err := httpapi.CheckParams(v, listParams...); err != nil {
		return Filter{}, err
	}
	var f Filter
	var err error
	if f.Limit, err = httpapi.ParseLimit(r, defaultPageSize, maxPageSize); err != nil {
		return f, err
	}
	if c := v.Get("cursor"); c != "" {
		var cur listCursor
		if err := httpapi.DecodeCursor(c, &cur); err != nil {
			return f, err
		}
		f.After = cur.After
	}
	if e := v.Get("email"); e != "" {
		if f.Email, err = NormalizeEmail(e); err != nil {
			return f, err
		}
	}
	if p := v.Get("phone"); p != "" {
		if f.Phone, err = NormalizePhone(p); err != nil {
			return f, err
		}
	}
	if t := v.Get("tag"); t != "" {
		if f.Tag, err = NormalizeTag(t); err != nil {
			return f, err
		}
	}
	if a := v.Get("attribute"); a != "" {
		key, val, ok := strings.Cut(a, ":")
		if !ok || !attributeKeyPattern.MatchString(key) {
			return f, fault.New(fault.Invalid, "invalid_filter", `attribute must be "name:value", the name %s (got %q)`, attributeKeyDesc, a)
		}
		f.AttributeKey, f.AttributeValue = key, filterValue(val)
	}
	if c := v.Get("consent"); c != "" {
		ch, status, ok := strings.Cut(c, ":")
		if !ok || !validChannel(ch) || !slices.Contains(ConsentStatuses, status) {
			return f, fault.New(fault.Invalid, "invalid_filter", `consent must be "channel:status" with channel email, sms or whatsapp and status granted, revoked or none (got %q)`, c)
		}
		f.ConsentChannel, f.ConsentStatus = ch, status
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"createdAfter", &f.CreatedAfter}, {"createdBefore", &f.CreatedBefore}, {"updatedAfter", &f.UpdatedAfter}, {"updatedBefore", &f.UpdatedBefore}} {
		if *p.dst, err = httpapi.ParseTime(v.Get(p.name), p.name, time.Time{}); err != nil {
			return f, err
		}
	}
	f.Query = strings.TrimSpace(v.Get("q"))
	return f, nil
}

// filterValue reads an attribute filter value: JSON numbers and booleans
// as such, anything else as a string ("2010" finds the number 2010; quote
// it, "\"2010\"", to find the string).
func filterValue(s string) json.RawMessage {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		switch v.(type) {
		case float64, bool, string:
			raw, err := normalizeAttribute("x", json.RawMessage(s))
			if err == nil {
				return raw
			}
		}
	}
	return marshalString(s)
}
