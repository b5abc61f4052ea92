package sequences

import (
	"context"
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
	maxBody         = 256 << 10
)

// Routes is the part of the HTTP server the module registers on.
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// HTTP serves the sequences API.
type HTTP struct{ svc *Service }

// NewHTTP returns the API over svc.
func NewHTTP(svc *Service) *HTTP { return &HTTP{svc: svc} }

// RegisterRoutes adds the module's endpoints to r.
func (h *HTTP) RegisterRoutes(r Routes) {
	r.HandleAPI("POST /api/v1/sequences", httpapi.Create(maxBody, h.svc.Create, func(x *Sequence) string { return "/api/v1/sequences/" + x.ID }))
	r.HandleAPI("GET /api/v1/sequences", h.list)
	r.HandleAPI("GET /api/v1/sequences/{id}", h.get)
	r.HandleAPI("POST /api/v1/sequences/{id}/activate", h.transition(h.svc.Activate))
	r.HandleAPI("POST /api/v1/sequences/{id}/pause", h.transition(h.svc.Pause))
	r.HandleAPI("POST /api/v1/sequences/{id}/enrollments", h.enroll)
	r.HandleAPI("GET /api/v1/sequence-enrollments", h.listEnrollments)
	r.HandleAPI("GET /api/v1/sequence-enrollments/{id}", h.getEnrollment)
	r.HandleAPI("POST /api/v1/sequence-enrollments/{id}/complete-step", h.completeStep)
	r.HandleAPI("POST /api/v1/sequence-enrollments/{id}/exit", h.exit)
}

func (h *HTTP) list(w http.ResponseWriter, r *http.Request) {
	if err := httpapi.CheckParams(r.URL.Query(), "limit", "cursor"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	tenant := httpapi.TenantID(r.Context())
	httpapi.List(w, r, defaultPageSize, maxPageSize,
		func(before *ListCursor, limit int) ([]*Sequence, error) {
			return h.svc.List(r.Context(), tenant, before, limit)
		},
		func(last *Sequence) ListCursor { return ListCursor{CreatedAt: last.CreatedAt.UnixMilli(), ID: last.ID} })
}

func (h *HTTP) get(w http.ResponseWriter, r *http.Request) {
	q, err := h.svc.Get(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	httpapi.Respond(w, r, q, err)
}

func (h *HTTP) transition(fn func(ctx context.Context, tenant, id string) (*Sequence, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := fn(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
		httpapi.Respond(w, r, q, err)
	}
}

func (h *HTTP) enroll(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ContactID  string `json:"contactId"`
		EnrolledBy string `json:"enrolledBy"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, 16<<10); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e, err := h.svc.Enroll(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), body.ContactID, body.EnrolledBy)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteCreated(w, "/api/v1/sequence-enrollments/"+e.ID, e)
}

var enrollmentStatuses = []string{EnrollmentActive, EnrollmentWaiting, EnrollmentCompleted, EnrollmentExited}

func (h *HTTP) listEnrollments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := httpapi.CheckParams(q, "limit", "cursor", "sequenceId", "contactId", "status"); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	f := EnrollmentFilter{SequenceID: q.Get("sequenceId"), ContactID: q.Get("contactId"), Status: q.Get("status")}
	if f.Status != "" && !slices.Contains(enrollmentStatuses, f.Status) {
		httpapi.WriteError(w, r, fault.New(fault.Invalid, "invalid_status", "status must be one of %s (got %q)", strings.Join(enrollmentStatuses, ", "), f.Status))
		return
	}
	tenant := httpapi.TenantID(r.Context())
	httpapi.List(w, r, defaultPageSize, maxPageSize,
		func(before *string, limit int) ([]*Enrollment, error) {
			b := ""
			if before != nil {
				b = *before
			}
			return h.svc.ListEnrollments(r.Context(), tenant, f, b, limit)
		},
		func(last *Enrollment) string { return last.ID })
}

func (h *HTTP) getEnrollment(w http.ResponseWriter, r *http.Request) {
	e, err := h.svc.GetEnrollment(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"))
	httpapi.Respond(w, r, e, err)
}

func (h *HTTP) completeStep(w http.ResponseWriter, r *http.Request) {
	var body struct {
		CompletedBy string `json:"completedBy"`
	}
	if err := httpapi.DecodeJSON(w, r, &body, 16<<10); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	e, err := h.svc.CompleteStep(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), body.CompletedBy)
	httpapi.Respond(w, r, e, err)
}

func (h *HTTP) exit(w http.ResponseWriter, r *http.Request) {
	e, err := h.svc.Exit(r.Context(), httpapi.TenantID(r.Context()), r.PathValue("id"), event.SequenceExitManual)
	httpapi.Respond(w, r, e, err)
}
