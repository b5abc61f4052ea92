package webhooks

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/channel/email/sendgrid"
	"github.com/alumoutreach/alumoutreach/internal/channel/sms/twilio"
	"github.com/alumoutreach/alumoutreach/internal/channel/whatsapp/meta"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

// Body limits: provider callbacks are small; inbound email carries
// attachments, which are counted and dropped.
const (
	maxCallbackBody = 1 << 20
	maxInboundEmail = 30 << 20
	// maxInboundText caps each text part of an inbound message so that its
	// event stays well under the event size limit.
	maxInboundText = 256 << 10
)

// Routes is where the module registers: public routes.
type Routes interface {
	Handle(pattern string, h http.Handler)
}

// RegisterRoutes adds the provider endpoints.
func (s *Service) RegisterRoutes(r Routes) {
	r.Handle("POST /webhooks/{tenant}/sendgrid/events", s.endpoint("sendgrid", s.sendgridEvents))
	r.Handle("POST /webhooks/{tenant}/sendgrid/inbound", s.endpoint("sendgrid", s.sendgridInbound))
	r.Handle("POST /webhooks/{tenant}/twilio/status", s.endpoint("twilio", s.twilioStatus))
	r.Handle("POST /webhooks/{tenant}/twilio/inbound", s.endpoint("twilio", s.twilioInbound))
	r.Handle("GET /webhooks/{tenant}/whatsapp", s.endpoint("meta", s.metaVerify))
	r.Handle("POST /webhooks/{tenant}/whatsapp", s.endpoint("meta", s.metaNotifications))
}

var (
	errSignature = fault.New(fault.Unauthorized, "bad_signature", "the request's provider signature is missing or does not verify")
	errNoTenant  = fault.New(fault.NotFound, "tenant_not_found", "no such tenant; check the webhook URL configured at the provider")
)

// handler handles one provider request for tenant, returning what it
// published (counted) or an error.
type handler func(w http.ResponseWriter, r *http.Request, tenant string) (int, error)

// endpoint checks the tenant, runs h, and counts and answers the outcome.
func (s *Service) endpoint(provider string, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := r.PathValue("tenant")
		ok, err := s.tenants.Exists(r.Context(), tenant)
		if err == nil && !ok {
			err = errNoTenant
		}
		n := 0
		if err == nil {
			n, err = h(w, r, tenant)
		}
		outcome := "published"
		switch fe, isFault := fault.As(err); {
		case err == nil && n == 0:
			outcome = "duplicate_or_ignored"
		case errors.Is(err, errSignature):
			outcome = "bad_signature"
		case errors.Is(err, errNoTenant):
			outcome = "unknown_tenant"
		case isFault && fe.Kind == fault.Invalid, isFault && fe.Kind == fault.TooLarge:
			outcome = "invalid"
		case err != nil:
			outcome = "error"
		}
		s.counts.WithLabelValues(provider, outcome).Inc()
		if err != nil {
			if outcome == "bad_signature" || outcome == "invalid" {
				s.log.WarnContext(r.Context(), "webhook refused", "provider", provider, "tenant", tenant, "outcome", outcome, "err", err)
			}
			httpapi.WriteError(w, r, err)
			return
		}
		if w.Header().Get("Content-Type") == "" {
			w.WriteHeader(http.StatusOK)
		}
	})
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, fault.Wrap(err, fault.TooLarge, "payload_too_large", "the webhook body is larger than %d bytes", limit)
	}
	return b, nil
}

func invalid(err error) error {
	return fault.Wrap(err, fault.Invalid, "invalid_webhook", "the provider's payload does not parse")
}

// --- SendGrid ---

// sendgridSubjects maps the events that concern a message to subjects;
// others (processed, deferred, unsubscribe handled by our own link, ...) are
// acknowledged and dropped.
var sendgridSubjects = map[sendgrid.EventType]string{
	sendgrid.EventDelivered:  event.WebhookEmailDelivered,
	sendgrid.EventOpen:       event.WebhookEmailOpened,
	sendgrid.EventClick:      event.WebhookEmailClicked,
	sendgrid.EventBounce:     event.WebhookEmailBounced,
	sendgrid.EventDropped:    event.WebhookEmailBounced,
	sendgrid.EventSpamReport: event.WebhookEmailComplained,
}

func (s *Service) sendgridEvents(w http.ResponseWriter, r *http.Request, tenant string) (int, error) {
	body, err := readBody(w, r, maxCallbackBody)
	if err != nil {
		return 0, err
	}
	if s.secrets.SendGridKey == nil || !sendgrid.VerifySignature(s.secrets.SendGridKey, body,
		r.Header.Get(sendgrid.SignatureHeader), r.Header.Get(sendgrid.TimestampHeader)) {
		return 0, errSignature
	}
	events, err := sendgrid.ParseEvents(body)
	if err != nil {
		return 0, invalid(err)
	}
	var reports []report
	for _, e := range events {
		subject, ok := sendgridSubjects[e.Type]
		if !ok || e.SMTPID == "" {
			continue // not about a message we can name
		}
		d := event.ProviderEventData{Provider: "sendgrid", Channel: event.ChannelEmail, ExternalID: e.SMTPID,
			MessageID: e.CustomArgs["message_id"], RecipientAddress: e.Email, Status: string(e.Type),
			OccurredAt: event.Time{Time: e.Timestamp.UTC()}, Reason: e.Reason, URL: e.URL}
		if subject == event.WebhookEmailBounced {
			d.BounceType = event.BounceHard
			if e.Type == sendgrid.EventBounce && e.BounceType == sendgrid.BounceTypeBlocked {
				d.BounceType = event.BounceSoft // blocked: the server refused for now, not the address
			}
			if d.Reason == "" {
				d.Reason = string(e.Type)
			}
		}
		env, err := newEvent(r.Context(), subject, tenant, d)
		if err != nil {
			return 0, invalid(err)
		}
		reports = append(reports, report{key: e.SGEventID, env: env})
	}
	return s.publish(r.Context(), tenant, "sendgrid", reports)
}

func (s *Service) sendgridInbound(w http.ResponseWriter, r *http.Request, tenant string) (int, error) {
	key := r.URL.Query().Get("key")
	if s.secrets.InboundKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.secrets.InboundKey)) != 1 {
		return 0, errSignature
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxInboundEmail)
	in, err := sendgrid.ParseInbound(r, 4<<20)
	if errors.Is(err, sendgrid.ErrTooLarge) {
		return 0, fault.Wrap(err, fault.TooLarge, "payload_too_large", "the inbound email is larger than %d bytes", maxInboundEmail)
	}
	if err != nil {
		return 0, invalid(err)
	}
	to := ""
	if len(in.To) > 0 {
		to = in.To[0].Address
	}
	externalID := in.MessageID
	if externalID == "" {
		return 0, invalid(errors.New("the inbound email has no Message-ID"))
	}
	env, err := newEvent(r.Context(), event.WebhookEmailInbound, tenant, event.InboundMessageData{
		Provider: "sendgrid", Channel: event.ChannelEmail, ExternalID: externalID, From: in.From.Address, To: to,
		Subject: in.Subject, Text: capText(in.Text), HTML: capText(in.HTML), InReplyTo: in.InReplyTo,
		ReceivedAt: event.Time{Time: s.now().UTC()}})
	if err != nil {
		return 0, invalid(err)
	}
	return s.publish(r.Context(), tenant, "sendgrid", []report{{key: "inbound:" + externalID, env: env}})
}

func capText(s string) string {
	if len(s) <= maxInboundText {
		return s
	}
	s = s[:maxInboundText]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// --- Twilio ---

// twilioForm reads and verifies a Twilio callback: the signature covers the
// public URL Twilio posted to and every form parameter.
func (s *Service) twilioForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	body, err := readBody(w, r, maxCallbackBody)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, invalid(err)
	}
	full := strings.TrimRight(s.secrets.PublicURL, "/") + r.URL.RequestURI()
	if s.secrets.TwilioAuthToken == "" || !twilio.VerifySignature(s.secrets.TwilioAuthToken, full, form, r.Header.Get(twilio.SignatureHeader)) {
		return nil, errSignature
	}
	return form, nil
}

func (s *Service) twilioStatus(w http.ResponseWriter, r *http.Request, tenant string) (int, error) {
	form, err := s.twilioForm(w, r)
	if err != nil {
		return 0, err
	}
	cb, err := twilio.ParseStatusCallback(form)
	if err != nil {
		return 0, invalid(err)
	}
	switch cb.MessageStatus {
	case twilio.StatusDelivered, twilio.StatusUndelivered, twilio.StatusFailed:
	default:
		return 0, nil // queued, sending, sent: steps the pipeline recorded itself
	}
	reason := cb.ErrorMessage
	if cb.ErrorCode != "" {
		reason = strings.TrimSpace("twilio " + cb.ErrorCode + " " + reason)
	}
	env, err := newEvent(r.Context(), event.WebhookSMSDelivered, tenant, event.ProviderEventData{
		Provider: "twilio", Channel: event.ChannelSMS, ExternalID: cb.MessageSid, RecipientAddress: cb.To,
		Status: string(cb.MessageStatus), OccurredAt: event.Time{Time: s.now().UTC()}, Reason: reason})
	if err != nil {
		return 0, invalid(err)
	}
	return s.publish(r.Context(), tenant, "twilio", []report{{key: cb.MessageSid + ":" + string(cb.MessageStatus), env: env}})
}

func (s *Service) twilioInbound(w http.ResponseWriter, r *http.Request, tenant string) (int, error) {
	form, err := s.twilioForm(w, r)
	if err != nil {
		return 0, err
	}
	in, err := twilio.ParseInbound(form)
	if err != nil {
		return 0, invalid(err)
	}
	env, err := newEvent(r.Context(), event.WebhookSMSInbound, tenant, event.InboundMessageData{
		Provider: "twilio", Channel: event.ChannelSMS, ExternalID: in.MessageSid, From: in.From, To: in.To,
		Text: capText(in.Body), ReceivedAt: event.Time{Time: s.now().UTC()}})
	if err != nil {
		return 0, invalid(err)
	}
	n, err := s.publish(r.Context(), tenant, "twilio", []report{{key: in.MessageSid, env: env}})
	if err == nil {
		// An empty TwiML answer: no automatic reply.
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<Response></Response>")
	}
	return n, err
}

// --- Meta WhatsApp ---

func (s *Service) metaVerify(w http.ResponseWriter, r *http.Request, _ string) (int, error) {
	challenge, ok := meta.VerifyChallenge(r.URL.Query(), s.secrets.MetaVerifyToken)
	if !ok || s.secrets.MetaVerifyToken == "" {
		return 0, fault.New(fault.Forbidden, "bad_verify_token", "hub.verify_token does not match whatsapp.meta.verify-token")
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, challenge)
	return 0, nil
}

func (s *Service) metaNotifications(w http.ResponseWriter, r *http.Request, tenant string) (int, error) {
	body, err := readBody(w, r, maxCallbackBody)
	if err != nil {
		return 0, err
	}
	if s.secrets.MetaAppSecret == "" || !meta.VerifySignature(s.secrets.MetaAppSecret, body, r.Header.Get(meta.SignatureHeader)) {
		return 0, errSignature
	}
	notes, err := meta.ParseWebhook(body)
	if err != nil {
		return 0, invalid(err)
	}
	var reports []report
	for _, n := range notes {
		rep, ok, err := s.metaReport(r.Context(), tenant, n)
		if err != nil {
			return 0, err
		}
		if ok {
			reports = append(reports, rep)
		}
	}
	return s.publish(r.Context(), tenant, "meta", reports)
}

// metaReport turns one notification into a report; template verdicts are
// applied directly.
func (s *Service) metaReport(ctx context.Context, tenant string, n meta.Notification) (report, bool, error) {
	switch v := n.(type) {
	case *meta.InboundMessage:
		env, err := newEvent(ctx, event.WebhookWhatsAppInbound, tenant, event.InboundMessageData{
			Provider: "meta", Channel: event.ChannelWhatsApp, ExternalID: v.ID, From: "+" + strings.TrimPrefix(v.From, "+"),
			To: v.PhoneNumberID, Text: capText(v.Text), InReplyTo: v.ContextID, ReceivedAt: event.Time{Time: v.Timestamp.UTC()}})
		return report{key: v.ID, env: env}, err == nil, wrapInvalid(err)
	case *meta.StatusUpdate:
		subject := map[meta.MessageStatus]string{meta.StatusDelivered: event.WebhookWhatsAppDelivered,
			meta.StatusFailed: event.WebhookWhatsAppDelivered, meta.StatusRead: event.WebhookWhatsAppRead}[v.Status]
		if subject == "" {
			return report{}, false, nil
		}
		reason := ""
		for _, e := range v.Errors {
			reason = strings.TrimSpace(reason + " " + e.Title + " " + e.Message)
		}
		d := event.ProviderEventData{Provider: "meta", Channel: event.ChannelWhatsApp, ExternalID: v.MessageID,
			MessageID: v.CallbackData, RecipientAddress: "+" + strings.TrimPrefix(v.RecipientID, "+"), Status: string(v.Status),
			OccurredAt: event.Time{Time: v.Timestamp.UTC()}, Reason: reason}
		env, err := newEvent(ctx, subject, tenant, d)
		return report{key: v.MessageID + ":" + string(v.Status), env: env}, err == nil, wrapInvalid(err)
	case *meta.TemplateStatusUpdate:
		approved, rejected := v.Event == "APPROVED", v.Event == "REJECTED"
		if (approved || rejected) && s.reviews != nil {
			if _, err := s.reviews.ApplyReview(ctx, tenant, v.TemplateName, v.Language, approved, v.Reason, v.TemplateID); err != nil {
				return report{}, false, err
			}
		}
	}
	return report{}, false, nil
}

func wrapInvalid(err error) error {
	if err == nil {
		return nil
	}
	return invalid(err)
}
