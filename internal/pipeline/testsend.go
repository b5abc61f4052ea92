package pipeline

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

// TestSend asks for one rendering of a template sent to an address of the
// caller's (not to a contact): to check how it looks in a real inbox.
type TestSend struct {
	TemplateID      string `json:"templateId"`
	TemplateVersion int64  `json:"templateVersion"`
	Channel         string `json:"channel"`
	// To is the address to send to: an email address or an E.164 number.
	To string `json:"to"`
	// ContactID, when set, fills the placeholders with that contact's data;
	// otherwise the template's defaults fill them.
	ContactID string `json:"contactId"`
	// A campaign's test: its sender, and its id and name for the
	// {{campaign.*}} placeholders.
	Sender     Sender `json:"-"`
	SourceID   string `json:"-"`
	SourceName string `json:"-"`
}

// TestResult is the provider's acceptance of a test send.
type TestResult struct {
	Provider   string `json:"provider"`
	ExternalID string `json:"externalId"`
	Subject    string `json:"subject,omitempty"`
}

// SendTest renders a template (a draft too) and hands it to the channel's
// provider at once. A test goes to the caller's own address: no consent,
// suppression or quiet hours apply, no message row is kept and no event is
// published, so tests never count as messages to contacts.
func (s *Service) SendTest(ctx context.Context, tenant string, t TestSend) (*TestResult, error) {
	if !event.ValidChannel(t.Channel) {
		return nil, fault.New(fault.Invalid, "invalid_field", "channel must be email, sms or whatsapp (got %q)", t.Channel)
	}
	to := strings.TrimSpace(t.To)
	if t.TemplateID == "" || to == "" {
		return nil, fault.New(fault.Invalid, "invalid_field", "templateId and to are required")
	}
	if t.Channel == event.ChannelEmail && (!strings.Contains(to, "@") || strings.ContainsAny(to, " <>\r\n")) {
		return nil, fault.New(fault.Invalid, "invalid_field", "to %q is not an email address", to)
	}
	if t.Channel != event.ChannelEmail && (!strings.HasPrefix(to, "+") || len(to) < 9 || strings.ContainsAny(to, " \r\n")) {
		return nil, fault.New(fault.Invalid, "invalid_field", "to %q is not an E.164 number such as +14155550123", to)
	}
	r := Recipient{Consent: map[string]bool{}}
	if t.ContactID != "" {
		var err error
		if r, err = s.Contacts.Recipient(ctx, tenant, t.ContactID); errors.Is(err, ErrRecipientNotFound) {
			return nil, fault.New(fault.NotFound, "contact_not_found", "no contact %q in this tenant", t.ContactID)
		} else if err != nil {
			return nil, err
		}
	}
	provider, ok := s.Providers[t.Channel]
	if !ok {
		return nil, fault.New(fault.Unavailable, "no_provider", "no provider is configured for %s", t.Channel)
	}
	id := event.NewID()
	content, err := s.Renderer.Render(ctx, tenant, t.TemplateID, t.TemplateVersion, t.Channel, RenderRequest{
		Recipient: r, MessageID: id, SourceID: t.SourceID, SourceName: t.SourceName, Draft: true})
	if errors.Is(err, ErrTemplate) {
		return nil, fault.Wrap(err, fault.Invalid, "template_error", "the template cannot be sent: %v", err)
	}
	if err != nil {
		return nil, err
	}
	if err := s.throttle(ctx, tenant, t.Channel); err != nil {
		return nil, err
	}
	m := &Message{ID: id, Channel: t.Channel, Recipient: to, sender: t.Sender}
	msg := s.outgoing(tenant, m, content, "")
	msg.StatusCallback = "" // nothing to report to: no message row
	receipt, err := s.call(ctx, provider, msg)
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "provider_error", "the provider did not take the test: %v", err)
	}
	s.Log.InfoContext(ctx, "test message sent", "tenant", tenant, "template", t.TemplateID, "channel", t.Channel, "provider", receipt.Provider)
	return &TestResult{Provider: receipt.Provider, ExternalID: receipt.ExternalID, Subject: content.Subject}, nil
}

func (h *HTTP) sendTest(w http.ResponseWriter, r *http.Request) {
	var t TestSend
	if err := httpapi.DecodeJSON(w, r, &t, 0); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	res, err := h.svc.SendTest(r.Context(), httpapi.TenantID(r.Context()), t)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
}
