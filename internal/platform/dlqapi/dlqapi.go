// Package dlqapi serves dead-letter operations under /api/v1/admin/dlq:
// list, show, replay and purge, one entry or all that match a filter.
//
// API keys belong to tenants, so these routes act only on the caller's
// tenant's entries (by the original event's tenantId). Operators who need
// every tenant's entries use `alumoutreach dlq`, which talks to NATS directly.
package dlqapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

// DeadLetters is what the handlers need of the bus.
type DeadLetters interface {
	ListDLQ(ctx context.Context, f bus.DLQFilter) ([]bus.DeadLetter, uint64, error)
	GetDLQ(ctx context.Context, seq uint64) (bus.DeadLetter, error)
	ReplayDLQ(ctx context.Context, seq uint64) (bus.DeadLetter, error)
	PurgeDLQ(ctx context.Context, seq uint64) error
	EachDLQ(ctx context.Context, f bus.DLQFilter, fn func(bus.DeadLetter) error) (int, error)
}

// Routes is where the handlers are registered (the httpapi server).
type Routes interface {
	HandleAPI(pattern string, h http.HandlerFunc)
}

// Handler serves the DLQ routes.
type Handler struct{ dl DeadLetters }

// New returns the handler.
func New(dl DeadLetters) *Handler { return &Handler{dl: dl} }

// RegisterRoutes adds the routes to r.
func (h *Handler) RegisterRoutes(r Routes) {
	r.HandleAPI("GET /api/v1/admin/dlq", h.list)
	r.HandleAPI("GET /api/v1/admin/dlq/{seq}", h.show)
	r.HandleAPI("POST /api/v1/admin/dlq/{seq}/replay", h.replay)
	r.HandleAPI("DELETE /api/v1/admin/dlq/{seq}", h.purge)
	r.HandleAPI("POST /api/v1/admin/dlq/replay", h.replayAll)
	r.HandleAPI("POST /api/v1/admin/dlq/purge", h.purgeAll)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	limit, err := httpapi.ParseLimit(r, 50, 500)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	f := bus.DLQFilter{
		Consumer: r.URL.Query().Get("consumer"),
		Subject:  r.URL.Query().Get("subject"),
		TenantID: httpapi.TenantID(r.Context()),
		Limit:    limit,
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		if err := httpapi.DecodeCursor(c, &f.After); err != nil {
			httpapi.WriteError(w, r, err)
			return
		}
	}
	items, next, err := h.dl.ListDLQ(r.Context(), f)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	if items == nil {
		items = []bus.DeadLetter{}
	}
	cursor := ""
	if next != 0 {
		cursor = httpapi.EncodeCursor(next)
	}
	httpapi.WritePage(w, items, cursor)
}

// entry loads the entry named in the path, refusing other tenants' entries
// as not found so their existence does not leak.
func (h *Handler) entry(r *http.Request) (bus.DeadLetter, error) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		return bus.DeadLetter{}, fault.New(fault.Invalid, "invalid_dlq_seq", "dead letter id %q must be the positive integer seq shown by the list", r.PathValue("seq"))
	}
	d, err := h.dl.GetDLQ(r.Context(), seq)
	if errors.Is(err, bus.ErrDeadLetterNotFound) || (err == nil && d.TenantID != httpapi.TenantID(r.Context())) {
		return bus.DeadLetter{}, fault.New(fault.NotFound, "dead_letter_not_found", "no dead letter with seq %d", seq)
	}
	return d, err
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	d, err := h.entry(r)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, d)
}

func (h *Handler) replay(w http.ResponseWriter, r *http.Request) {
	d, err := h.entry(r)
	if err == nil {
		d, err = h.dl.ReplayDLQ(r.Context(), d.Seq)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]any{"replayed": d.Seq, "consumer": d.Consumer})
}

func (h *Handler) purge(w http.ResponseWriter, r *http.Request) {
	d, err := h.entry(r)
	if err == nil {
		err = h.dl.PurgeDLQ(r.Context(), d.Seq)
	}
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type filterBody struct {
	Consumer string `json:"consumer"`
	Subject  string `json:"subject"`
}

func (h *Handler) replayAll(w http.ResponseWriter, r *http.Request) {
	h.bulk(w, r, "replayed", func(ctx context.Context, d bus.DeadLetter) error {
		_, err := h.dl.ReplayDLQ(ctx, d.Seq)
		return err
	})
}

func (h *Handler) purgeAll(w http.ResponseWriter, r *http.Request) {
	h.bulk(w, r, "purged", func(ctx context.Context, d bus.DeadLetter) error {
		return h.dl.PurgeDLQ(ctx, d.Seq)
	})
}

func (h *Handler) bulk(w http.ResponseWriter, r *http.Request, verb string, op func(context.Context, bus.DeadLetter) error) {
	var body filterBody
	if err := httpapi.DecodeJSON(w, r, &body, 0); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	f := bus.DLQFilter{Consumer: body.Consumer, Subject: body.Subject, TenantID: httpapi.TenantID(r.Context())}
	n, err := h.dl.EachDLQ(r.Context(), f, func(d bus.DeadLetter) error { return op(r.Context(), d) })
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]int{verb: n})
}
