package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alumoutreach/alumoutreach/internal/campaigns"
	"github.com/alumoutreach/alumoutreach/internal/channel"
	"github.com/alumoutreach/alumoutreach/internal/channel/whatsapp/meta"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/contacts"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/pipeline"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/tenant"
	"github.com/alumoutreach/alumoutreach/internal/rule"
	"github.com/alumoutreach/alumoutreach/internal/segments"
	"github.com/alumoutreach/alumoutreach/internal/sequences"
	"github.com/alumoutreach/alumoutreach/internal/templates"
	"github.com/alumoutreach/alumoutreach/internal/templates/render"
	"github.com/alumoutreach/alumoutreach/internal/workflows"
)

// contactSnapshots lets segments read a contact's current state from the
// contacts module without either importing the other.
type contactSnapshots struct{ svc *contacts.Service }

func (c contactSnapshots) ContactSnapshot(ctx context.Context, tenant, id string) (segments.Snapshot, error) {
	ct, err := c.svc.Get(ctx, tenant, id)
	if errors.Is(err, contacts.ErrNotFound) {
		return segments.Snapshot{}, segments.ErrContactNotFound
	}
	if err != nil {
		return segments.Snapshot{}, err
	}
	snap := segments.Snapshot{ID: ct.ID, Version: ct.Version, Deleted: ct.Erased()}
	if snap.Deleted {
		return snap, nil
	}
	snap.Contact, err = ruleContact(ct)
	return snap, err
}

// ruleContact is a contact as rules read it.
func ruleContact(ct *contacts.Contact) (rule.Contact, error) {
	attrs, err := decodeAttributes(ct)
	if err != nil {
		return rule.Contact{}, err
	}
	return rule.Contact{
		Email: ct.Email, Phone: ct.Phone, FirstName: ct.FirstName, LastName: ct.LastName,
		Locale: ct.Locale, TimeZone: ct.TimeZone, Attributes: attrs, Tags: ct.Tags,
		Consent: rule.Consent{
			Email:    ct.Consent[event.ChannelEmail].Granted,
			SMS:      ct.Consent[event.ChannelSMS].Granted,
			WhatsApp: ct.Consent[event.ChannelWhatsApp].Granted,
		},
		CreatedAt: ct.CreatedAt, UpdatedAt: ct.UpdatedAt,
	}, nil
}

// workflowContacts reads contacts for workflow rules and applies
// update_contact nodes.
type workflowContacts struct{ svc *contacts.Service }

func (c workflowContacts) Contact(ctx context.Context, tenant, id string) (rule.Contact, error) {
	ct, err := c.svc.Get(ctx, tenant, id)
	if errors.Is(err, contacts.ErrNotFound) || err == nil && ct.Erased() {
		return rule.Contact{}, workflows.ErrContactNotFound
	}
	if err != nil {
		return rule.Contact{}, err
	}
	return ruleContact(ct)
}

// Apply makes each change in its own contacts transaction; each is
// idempotent (a value or tag already there changes nothing), so a node
// retried after a partial failure completes the rest.
func (c workflowContacts) Apply(ctx context.Context, tenant, id string, ch workflows.ContactChange) error {
	if len(ch.SetAttributes) > 0 {
		attrs := make(map[string]json.RawMessage, len(ch.SetAttributes))
		for k, v := range ch.SetAttributes {
			raw, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("attribute %s: %w", k, err)
			}
			attrs[k] = raw
		}
		body, err := json.Marshal(map[string]any{"attributes": attrs})
		if err != nil {
			return err
		}
		f, err := contacts.ParsePatch(body)
		if err != nil {
			return err
		}
		if _, err := c.svc.Update(ctx, tenant, id, f, 0); err != nil {
			return workflowContactErr(err)
		}
	}
	if len(ch.AddTags) > 0 {
		if _, err := c.svc.AddTags(ctx, tenant, id, ch.AddTags); err != nil {
			return workflowContactErr(err)
		}
	}
	for _, t := range ch.RemoveTags {
		if _, err := c.svc.RemoveTag(ctx, tenant, id, t); err != nil {
			return workflowContactErr(err)
		}
	}
	return nil
}

func workflowContactErr(err error) error {
	if errors.Is(err, contacts.ErrNotFound) {
		return workflows.ErrContactNotFound
	}
	return err
}

// workflowTemplates tells workflows about templates.
type workflowTemplates struct{ templates *templates.Service }

func (w workflowTemplates) Template(ctx context.Context, tenant, id string) (string, bool, error) {
	t, err := campaignTemplates(w).Template(ctx, tenant, id)
	if errors.Is(err, campaigns.ErrTemplateNotFound) {
		return "", false, workflows.ErrTemplateNotFound
	}
	return t.Channel, t.Active, err
}

// decodeAttributes turns a contact's attributes, kept as JSON, into the Go
// values rules and templates read (string, float64, bool).
func decodeAttributes(ct *contacts.Contact) (map[string]any, error) {
	attrs := make(map[string]any, len(ct.Attributes))
	for k, raw := range ct.Attributes {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("contact %s attribute %s: %w", ct.ID, k, err)
		}
		attrs[k] = v
	}
	return attrs, nil
}

// templateContacts lets templates preview on a stored contact.
type templateContacts struct{ svc *contacts.Service }

func (c templateContacts) TemplateContact(ctx context.Context, tenant, id string) (render.Contact, error) {
	ct, err := c.svc.Get(ctx, tenant, id)
	if errors.Is(err, contacts.ErrNotFound) {
		return render.Contact{}, templates.ErrContactNotFound
	}
	if err != nil {
		return render.Contact{}, err
	}
	attrs, err := decodeAttributes(ct)
	if err != nil {
		return render.Contact{}, err
	}
	return render.Contact{Email: ct.Email, Phone: ct.Phone, FirstName: ct.FirstName, LastName: ct.LastName,
		Locale: ct.Locale, TimeZone: ct.TimeZone, Tags: ct.Tags, Attributes: attrs}, nil
}

// pipelineContacts gives the pipeline the recipient of a message.
type pipelineContacts struct{ svc *contacts.Service }

func (c pipelineContacts) Recipient(ctx context.Context, tenant, id string) (pipeline.Recipient, error) {
	ct, err := c.svc.Get(ctx, tenant, id)
	if errors.Is(err, contacts.ErrNotFound) {
		return pipeline.Recipient{}, pipeline.ErrRecipientNotFound
	}
	if err != nil {
		return pipeline.Recipient{}, err
	}
	if ct.Erased() {
		return pipeline.Recipient{}, pipeline.ErrRecipientNotFound
	}
	return recipient(ct)
}

// Recipients reads a batch of recipients at once; erased and missing
// contacts are left out.
func (c pipelineContacts) Recipients(ctx context.Context, tenant string, ids []string) (map[string]pipeline.Recipient, error) {
	cs, err := c.svc.GetMany(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]pipeline.Recipient, len(cs))
	for _, ct := range cs {
		if ct.Erased() {
			continue
		}
		r, err := recipient(ct)
		if err != nil {
			return nil, err
		}
		out[ct.ID] = r
	}
	return out, nil
}

func recipient(ct *contacts.Contact) (pipeline.Recipient, error) {
	attrs, err := decodeAttributes(ct)
	if err != nil {
		return pipeline.Recipient{}, err
	}
	consent := make(map[string]bool, len(ct.Consent))
	for ch, c := range ct.Consent {
		consent[ch] = c.Granted
	}
	return pipeline.Recipient{ContactID: ct.ID, Email: ct.Email, Phone: ct.Phone, FirstName: ct.FirstName, LastName: ct.LastName,
		Locale: ct.Locale, TimeZone: ct.TimeZone, Tags: ct.Tags, Attributes: attrs, Consent: consent}, nil
}

// pipelineTemplates renders a message's template for the pipeline. A
// template that is missing, of another channel or not active is the
// message's failure (pipeline.ErrTemplate), not a reason to retry.
type pipelineTemplates struct{ svc *templates.Service }

func (t pipelineTemplates) Render(ctx context.Context, tenant, id string, version int64, ch string, req pipeline.RenderRequest) (pipeline.Content, error) {
	r := req.Recipient
	out, err := t.svc.Render(ctx, tenant, id, version, &render.Data{
		Contact: render.Contact{Email: r.Email, Phone: r.Phone, FirstName: r.FirstName, LastName: r.LastName, Locale: r.Locale,
			TimeZone: r.TimeZone, Tags: r.Tags, Attributes: r.Attributes},
		CampaignID: req.SourceID, CampaignName: req.SourceName, MessageID: req.MessageID, UnsubscribeURL: req.UnsubscribeURL,
	})
	if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
		return pipeline.Content{}, fmt.Errorf("%w: %s", pipeline.ErrTemplate, fe.Message)
	}
	if err != nil {
		return pipeline.Content{}, err
	}
	switch {
	case out.Channel != ch:
		return pipeline.Content{}, fmt.Errorf("%w: template %s is for %s, the message for %s", pipeline.ErrTemplate, id, out.Channel, ch)
	case out.Status != templates.StatusActive && !(req.Draft && out.Status == templates.StatusCreated):
		return pipeline.Content{}, fmt.Errorf("%w: template %s is %s; activate it to send with it", pipeline.ErrTemplate, id, out.Status)
	}
	c := pipeline.Content{Version: out.Version, Subject: out.Subject, HTML: out.HTML, Text: out.Text, Body: out.Body,
		From: out.From, FromName: out.FromName, ReplyTo: out.ReplyTo}
	if w := out.WhatsApp; w != nil {
		c.WhatsApp = &channel.Template{Name: w.Name, Language: w.Language, Params: w.Params}
	}
	return c, nil
}

// consentRevoker lets the pipeline record an unsubscribe as the contact's
// decision, which the contacts module publishes as contact.consent.revoked.
type consentRevoker struct{ svc *contacts.Service }

func (c consentRevoker) RevokeConsent(ctx context.Context, tenant, contactID, ch, source, proof string) error {
	_, err := c.svc.SetConsent(ctx, tenant, contactID, ch, contacts.ConsentInput{Granted: false, Source: source, Proof: proof})
	if errors.Is(err, contacts.ErrNotFound) {
		return pipeline.ErrRecipientNotFound
	}
	var fe *fault.Error
	if errors.As(err, &fe) && fe.Code == "contact_erased" {
		return pipeline.ErrRecipientNotFound
	}
	return err
}

// tenantExists tells webhooks whether the tenant of a webhook URL exists.
type tenantExists struct{ svc *tenant.Service }

func (t tenantExists) Exists(ctx context.Context, id string) (bool, error) {
	_, err := t.svc.Get(ctx, id)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	var fe *fault.Error
	if errors.As(err, &fe) && fe.Kind == fault.NotFound {
		return false, nil
	}
	return false, err
}

// campaignAudience reads segments for campaigns.
type campaignAudience struct{ segments *segments.Service }

func (c campaignAudience) SegmentExists(ctx context.Context, tenant, id string) (bool, error) {
	_, err := c.segments.Get(ctx, tenant, id)
	if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
		return false, nil
	}
	return err == nil, err
}

func (c campaignAudience) Members(ctx context.Context, tenant, segmentID, after string, limit int) ([]campaigns.Member, error) {
	rs, err := c.segments.Recipients(ctx, tenant, segmentID, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]campaigns.Member, len(rs))
	for i, r := range rs {
		out[i] = campaigns.Member{ContactID: r.ContactID, TimeZone: r.TimeZone}
	}
	return out, nil
}

// campaignTemplates tells campaigns about templates.
type campaignTemplates struct{ templates *templates.Service }

func (c campaignTemplates) Template(ctx context.Context, tenant, id string) (campaigns.TemplateInfo, error) {
	t, err := c.templates.Get(ctx, tenant, id)
	if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
		return campaigns.TemplateInfo{}, campaigns.ErrTemplateNotFound
	}
	if err != nil {
		return campaigns.TemplateInfo{}, err
	}
	return campaigns.TemplateInfo{Channel: t.Channel, Active: t.Status == templates.StatusActive, Version: t.Version}, nil
}

// campaignTester sends campaigns' test messages through the pipeline.
type campaignTester struct{ pipeline *pipeline.Service }

func (c campaignTester) SendTest(ctx context.Context, tenant string, t campaigns.TestRequest) (campaigns.TestResult, error) {
	if c.pipeline == nil {
		return campaigns.TestResult{}, fault.New(fault.Unavailable, "pipeline_disabled", "this instance does not run the pipeline module; send the test through one that does")
	}
	r, err := c.pipeline.SendTest(ctx, tenant, pipeline.TestSend{TemplateID: t.TemplateID, TemplateVersion: t.TemplateVersion,
		Channel: t.Channel, To: t.To, ContactID: t.ContactID, SourceID: t.CampaignID, SourceName: t.CampaignName,
		Sender: pipeline.Sender{From: t.Sender.From, FromName: t.Sender.FromName, ReplyTo: t.Sender.ReplyTo}})
	if err != nil {
		return campaigns.TestResult{}, err
	}
	return campaigns.TestResult{Provider: r.Provider, ExternalID: r.ExternalID, Subject: r.Subject}, nil
}

// templateReviewer is the WhatsApp provider's review of templates: Meta's
// with whatsapp.provider meta, else the sandbox's, which approves every
// template at once.
func templateReviewer(c config.WhatsAppConfig) (templates.ReviewSubmitter, error) {
	if c.Provider != config.ProviderMeta {
		return templates.SandboxReviewer{}, nil
	}
	s, err := meta.New(meta.Config{PhoneNumberID: c.Meta.PhoneNumberID, BusinessAccountID: c.Meta.BusinessAccountID,
		AccessToken: c.Meta.AccessToken, APIVersion: c.Meta.APIVersion, BaseURL: c.Meta.BaseURL})
	if err != nil {
		return nil, fmt.Errorf("whatsapp provider: %w", err)
	}
	return metaReviews{s}, nil
}

// metaReviews submits WhatsApp templates to Meta's review, creating them
// under the configured business account (one for every tenant of the
// instance, like the app's webhook).
type metaReviews struct{ meta *meta.Sender }

func (m metaReviews) SubmitForReview(ctx context.Context, _ string, r templates.ReviewRequest) (templates.ReviewResult, error) {
	st, err := m.meta.CreateTemplate(ctx, meta.MessageTemplate{Name: r.Name, Language: r.Language, Category: r.Category,
		Body: r.Body, BodyExamples: r.Examples})
	var ce *channel.Error
	if errors.As(err, &ce) && ce.Permanent {
		// Meta refused the template itself: the review ends, rejected.
		reason := ce.Message
		if ce.Code != "" {
			reason = "Meta error " + ce.Code + ": " + reason
		}
		return templates.ReviewResult{Status: templates.ReviewRejected, Reason: reason}, nil
	}
	if err != nil {
		return templates.ReviewResult{}, err
	}
	res := templates.ReviewResult{ProviderID: st.ID, Status: templates.ReviewSubmitted}
	switch st.Status {
	case meta.TemplateApproved:
		res.Status = templates.ReviewApproved
	case meta.TemplateRejected, "DISABLED":
		res.Status = templates.ReviewRejected
		res.Reason = "Meta holds the template as " + st.Status
		if st.Reason != "" {
			res.Reason += " (" + st.Reason + ")"
		}
		if st.Existing {
			res.Reason += "; a template of this name and language exists already at Meta: submit under another name, or edit it in WhatsApp Manager"
		}
	}
	return res, nil
}

// inboxContacts matches inbound senders to contacts.
type inboxContacts struct{ svc *contacts.Service }

func (c inboxContacts) ContactByAddress(ctx context.Context, tenant, channel, address string) (string, error) {
	return c.svc.IDByAddress(ctx, tenant, channel, address)
}

// inboxSent finds the pipeline message an inbound reply answers; none when
// this instance does not run the pipeline.
type inboxSent struct{ svc *pipeline.Service }

func (s inboxSent) MessageByExternalID(ctx context.Context, tenant, externalID string) (string, error) {
	if s.svc == nil {
		return "", nil
	}
	return s.svc.MessageIDByExternalID(ctx, tenant, externalID)
}

// sequenceTemplates tells sequences a template's channel and status.
type sequenceTemplates struct{ templates *templates.Service }

func (q sequenceTemplates) Template(ctx context.Context, tenant, id string) (string, bool, error) {
	t, err := campaignTemplates(q).Template(ctx, tenant, id)
	if errors.Is(err, campaigns.ErrTemplateNotFound) {
		return "", false, sequences.ErrTemplateNotFound
	}
	return t.Channel, t.Active, err
}

// sequenceContacts tells sequences whether a contact exists.
type sequenceContacts struct{ svc *contacts.Service }

func (c sequenceContacts) Exists(ctx context.Context, tenant, id string) (bool, error) {
	ct, err := c.svc.Get(ctx, tenant, id)
	if errors.Is(err, contacts.ErrNotFound) {
		return false, nil
	}
	return err == nil && !ct.Erased(), err
}
