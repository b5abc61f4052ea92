package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
)

// ConsentRevoker records that a contact withdrew consent on a channel; the
// app wires it to the contacts module, which publishes
// contact.consent.revoked.
type ConsentRevoker interface {
	RevokeConsent(ctx context.Context, tenant, contactID, channel, source, proof string) error
}

// PublicRoutes is where the module registers the links recipients follow:
// no API key, the signed token is the authority.
type PublicRoutes interface {
	Handle(pattern string, h http.Handler)
}

// RegisterPublicRoutes adds the tracking and unsubscribe endpoints.
func (h *HTTP) RegisterPublicRoutes(r PublicRoutes) {
	if h.svc.Links == nil {
		return
	}
	r.Handle("GET /t/o/{token}", http.HandlerFunc(h.open))
	r.Handle("GET /t/c/{token}", http.HandlerFunc(h.click))
	r.Handle("GET /u/{token}", http.HandlerFunc(h.unsubscribePage))
	r.Handle("POST /u/{token}", http.HandlerFunc(h.unsubscribe))
}

// pixel is a transparent 1x1 GIF.
var pixel = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

func (h *HTTP) open(w http.ResponseWriter, r *http.Request) {
	tenant, id, _, err := h.svc.Links.parse(linkOpen, r.PathValue("token"))
	if err == nil && r.Method == http.MethodGet { // a HEAD (link checkers) is no open
		err = h.svc.track(r.Context(), tenant, id, event.PipelineMessageOpened, "")
	}
	if err != nil && !errors.Is(err, errBadToken) {
		h.svc.Log.WarnContext(r.Context(), "open not recorded", "err", err)
	}
	// The image is served whatever happened: a broken image in a
	// recipient's mail helps nobody.
	w.Header().Set("Content-Type", "image/gif")
	w.Header().Set("Cache-Control", "no-store, private")
	_, _ = w.Write(pixel)
}

func (h *HTTP) click(w http.ResponseWriter, r *http.Request) {
	tenant, id, target, err := h.svc.Links.parse(linkClick, r.PathValue("token"))
	if err != nil || target == "" {
		http.Error(w, "This link is not valid.", http.StatusNotFound)
		return
	}
	if r.Method == http.MethodGet { // a HEAD (link checkers) is no click
		if err := h.svc.track(r.Context(), tenant, id, event.PipelineMessageClicked, target); err != nil {
			h.svc.Log.WarnContext(r.Context(), "click not recorded", "err", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store, private")
	http.Redirect(w, r, target, http.StatusFound)
}

// track publishes an open or a click of a message.
func (s *Service) track(ctx context.Context, tenant, id, subject, url string) error {
	m, err := byID(ctx, s.DB.Reader(), tenant, id)
	if err != nil {
		return err
	}
	d := messageData(m)
	d.URL, d.Reason, d.ErrorCode = url, "", ""
	d.OccurredAt = event.Time{Time: s.clock()}
	ctx = event.EnsureCorrelation(ctx)
	return s.Outbox.InTx(ctx, func(_ *sql.Tx, emit outbox.Emit) error {
		env, err := event.New(ctx, subject, event.SourcePipeline, tenant, d)
		if err != nil {
			return err
		}
		return emit(env)
	})
}

var unsubscribeTmpl = template.Must(template.New("u").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Unsubscribe</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em">
{{if .Done}}<h1>You are unsubscribed</h1><p>{{.Address}} will receive no more email from us.</p>
{{else if .Invalid}}<h1>This link is not valid</h1><p>It may have been cut short; try the link in another of our emails.</p>
{{else}}<h1>Unsubscribe</h1><p>Stop email to {{.Address}}?</p>
<form method="post"><button type="submit">Unsubscribe</button></form>{{end}}
</body></html>`))

type unsubscribeView struct {
	Address       string
	Done, Invalid bool
}

// unsubscribePage asks for confirmation: a GET changes nothing, because
// mail scanners follow links.
func (h *HTTP) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	view := unsubscribeView{}
	tenant, id, _, err := h.svc.Links.parse(linkUnsubscribe, r.PathValue("token"))
	var m *Message
	if err == nil {
		m, err = byID(r.Context(), h.svc.DB.Reader(), tenant, id)
	}
	status := http.StatusOK
	if err != nil {
		view.Invalid, status = true, http.StatusNotFound
	} else {
		view.Address = maskAddress(m.Recipient)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = unsubscribeTmpl.Execute(w, view)
}

// unsubscribe handles the confirmation form and RFC 8058 one-click POSTs
// (body List-Unsubscribe=One-Click) alike.
func (h *HTTP) unsubscribe(w http.ResponseWriter, r *http.Request) {
	tenant, id, _, err := h.svc.Links.parse(linkUnsubscribe, r.PathValue("token"))
	var m *Message
	if err == nil {
		m, err = h.svc.Unsubscribe(r.Context(), tenant, id)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		if _, ok := fault.As(err); !ok && !errors.Is(err, errBadToken) {
			h.svc.Log.ErrorContext(r.Context(), "unsubscribe failed", "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			_ = unsubscribeTmpl.Execute(w, unsubscribeView{Invalid: true})
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_ = unsubscribeTmpl.Execute(w, unsubscribeView{Invalid: true})
		return
	}
	_ = unsubscribeTmpl.Execute(w, unsubscribeView{Done: true, Address: maskAddress(m.Recipient)})
}

// Unsubscribe stops email to the recipient of a message: the address is
// suppressed on email, and the contact's email consent revoked. The first
// unsubscribe through a message also marks the message unsubscribed and
// publishes pipeline.message.unsubscribed, in the transaction that
// suppresses the address; using the link again publishes nothing.
func (s *Service) Unsubscribe(ctx context.Context, tenant, messageID string) (*Message, error) {
	m, err := byID(ctx, s.DB.Reader(), tenant, messageID)
	if err != nil {
		return nil, err
	}
	if m.Channel != event.ChannelEmail || m.Recipient == "" {
		return nil, fault.New(fault.NotFound, "not_unsubscribable", "message %s has no email recipient", messageID)
	}
	addr, err := normalizeAddress(event.ChannelEmail, m.Recipient)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	d := messageData(m)
	d.Reason, d.ErrorCode, d.OccurredAt = "", "", event.Time{Time: now}
	ctx = event.EnsureCorrelation(ctx)
	err = s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if err := insertSuppression(ctx, tx, tenant, event.ChannelEmail, addr, SuppressUnsubscribe, now); err != nil {
			return err
		}
		// Once per message: only the request that sets unsubscribed_at
		// publishes (on PostgreSQL a concurrent one waits for this row and
		// then finds it set).
		res, err := tx.ExecContext(ctx, `UPDATE messages SET unsubscribed_at = $3
			WHERE tenant_id = $1 AND id = $2 AND unsubscribed_at IS NULL`, tenant, m.ID, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("mark message %s unsubscribed: %w", m.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		env, err := event.New(ctx, event.PipelineMessageUnsubscribed, event.SourcePipeline, tenant, d)
		if err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	if s.Consent != nil {
		err := s.Consent.RevokeConsent(ctx, tenant, m.ContactID, event.ChannelEmail, "unsubscribe_link", "message "+m.ID)
		if err != nil && !errors.Is(err, ErrRecipientNotFound) {
			return nil, err
		}
	}
	s.Log.InfoContext(ctx, "unsubscribed", "tenant", tenant, "message", m.ID, "contact", m.ContactID)
	return m, nil
}

// maskAddress shows enough of an address for its owner to recognise it.
func maskAddress(a string) string {
	at := strings.IndexByte(a, '@')
	if at <= 1 {
		return a
	}
	return a[:1] + strings.Repeat("*", min(at-1, 6)) + a[at:]
}
