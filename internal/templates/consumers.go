package templates

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/templates/render"
)

// ReviewConsumerName is the durable consumer that hands each submitted
// WhatsApp template to the provider's review.
const ReviewConsumerName = "TEMPLATES_REVIEW_CONSUMER"

// ReviewSubmitter submits a WhatsApp template for the provider's review;
// the app wires it to the configured provider (Meta's Cloud API) or to
// SandboxReviewer.
//
// A refusal of the template itself (its name, text, examples or category)
// is a result with Status ReviewRejected and the provider's Reason, not an
// error. An error means the template could not be submitted now (the
// provider unreachable or throttling, the account's settings): the
// submission is tried again, and dead-lettered after the last attempt.
// Submitting a template the provider holds already (same name and
// language) must not create a second one.
type ReviewSubmitter interface {
	SubmitForReview(ctx context.Context, tenant string, r ReviewRequest) (ReviewResult, error)
}

// ReviewRequest is what a provider needs to review a WhatsApp template:
// the template's provider template (content.whatsapp) as submitted.
type ReviewRequest struct {
	// TemplateID is our template.
	TemplateID string
	// Name, Language and Category identify the template at the provider.
	Name     string
	Language string
	Category string
	// Body is the text with {{1}}, {{2}}, ... parameters.
	Body string
	// Examples are sample values of {{1}}, {{2}}, ... for the provider's
	// reviewers: the template's params rendered for a sample contact and
	// campaign (Compiled.Examples), never empty.
	Examples []string
}

// ReviewResult is the provider's answer to a submission.
type ReviewResult struct {
	// ProviderID is the provider's id of the template, when it gave one.
	ProviderID string
	// Status is ReviewSubmitted (or empty) while the provider reviews, or
	// ReviewApproved or ReviewRejected when it decided at once or refused
	// the template.
	Status string
	// Reason says why it was rejected.
	Reason string
}

// ReviewHandler returns the TEMPLATES_REVIEW_CONSUMER handler, on
// template.hsm.submitted: it hands the submitted content of the template
// to reviewer, records the provider's id of the template, and applies a
// verdict the provider gave at once (a refusal, or the sandbox's approval)
// through the same path as the provider's webhook (template.hsm.approved
// or template.hsm.rejected).
//
// It acts only on the template's current submission, still waiting for
// its verdict and not yet handed over: a redelivered event, one a newer
// submission superseded, or one whose verdict arrived already (by webhook)
// changes nothing, and a verdict applied is never overwritten.
func (s *Service) ReviewHandler(reviewer ReviewSubmitter) bus.Handler {
	return func(ctx context.Context, env event.Envelope) error {
		d, err := event.DecodeData[event.TemplateHSMSubmittedData](env)
		if err != nil {
			return bus.Permanent(err)
		}
		req, ok, err := s.pendingReview(ctx, env.TenantID, env.ID, d)
		if err != nil || !ok {
			return err
		}
		res, err := reviewer.SubmitForReview(ctx, env.TenantID, req)
		if err != nil {
			return fmt.Errorf("submit template %s (%s, %s) for review: %w", d.TemplateID, d.ProviderTemplateName, d.Language, err)
		}
		return s.recordReview(ctx, env.TenantID, env.ID, d, res)
	}
}

// isSubmission reports whether r is the review that the
// template.hsm.submitted event submission (with payload d) started. Rows
// from before submissions were recorded match on name and language.
func isSubmission(r *Review, submission string, d event.TemplateHSMData) bool {
	if r == nil || r.Name != d.ProviderTemplateName || r.Language != d.Language {
		return false
	}
	return r.submission == submission || r.submission == ""
}

// pendingReview builds the review request of the submission, or reports
// false when there is nothing to submit any more.
func (s *Service) pendingReview(ctx context.Context, tenant, submission string, d event.TemplateHSMData) (ReviewRequest, bool, error) {
	t, err := s.get(ctx, s.db.Reader(), tenant, d.TemplateID, 0, false)
	if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
		return ReviewRequest{}, false, nil // deleted since: nothing to review
	}
	if err != nil {
		return ReviewRequest{}, false, err
	}
	r := t.Review
	if !isSubmission(r, submission, d) || r.Status != ReviewSubmitted || r.ProviderID != "" {
		return ReviewRequest{}, false, nil
	}
	if r.version > 0 && r.version != t.Version {
		// The content submitted, not what it has become since.
		if t, err = s.get(ctx, s.db.Reader(), tenant, d.TemplateID, r.version, false); err != nil {
			return ReviewRequest{}, false, err
		}
	}
	w := t.Content.WhatsApp
	if w == nil || w.Name != r.Name || w.Language != r.Language {
		s.log.WarnContext(ctx, "submitted WhatsApp template no longer has that provider template; submit it again",
			"tenant", tenant, "template", d.TemplateID, "name", r.Name, "language", r.Language)
		return ReviewRequest{}, false, nil
	}
	c, err := Compile(t.Channel, t.Content)
	if err != nil {
		return ReviewRequest{}, false, bus.Permanent(fmt.Errorf("template %s version %d no longer compiles: %w", t.ID, t.Version, err))
	}
	examples, err := c.Examples()
	if err != nil {
		return ReviewRequest{}, false, bus.Permanent(err)
	}
	return ReviewRequest{TemplateID: t.ID, Name: w.Name, Language: w.Language, Category: w.Category, Body: w.Body, Examples: examples}, true, nil
}

// recordReview stores the provider's answer to the submission: its id of
// the template, and a verdict given at once unless one arrived already.
func (s *Service) recordReview(ctx context.Context, tenant, submission string, d event.TemplateHSMData, res ReviewResult) error {
	var verdict string
	switch res.Status {
	case "", ReviewSubmitted:
	case ReviewApproved, ReviewRejected:
		verdict = res.Status
	default:
		return bus.Permanent(fmt.Errorf("the reviewer answered status %q; want submitted, approved or rejected", res.Status))
	}
	return s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		t, err := s.get(ctx, tx, tenant, d.TemplateID, 0, true)
		if fe, ok := fault.As(err); ok && fe.Kind == fault.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		r := t.Review
		if !isSubmission(r, submission, d) {
			return nil // submitted again meanwhile: the newer submission is the one that counts
		}
		r.submission = submission
		if verdict != "" && r.Status == ReviewSubmitted {
			return s.applyVerdict(ctx, tx, emit, tenant, t, verdict == ReviewApproved, res.Reason, res.ProviderID)
		}
		if res.ProviderID == "" || res.ProviderID == r.ProviderID {
			return nil
		}
		r.ProviderID = res.ProviderID
		t.UpdatedAt = s.clock()
		return s.storeReview(ctx, tx, tenant, t)
	})
}

// sampleData is the recipient and campaign that review examples are
// rendered for: a provider's reviewers read what a message looks like.
var sampleData = render.Data{
	Contact: render.Contact{Email: "ada.lovelace@example.org", Phone: "+447700900123", FirstName: "Ada", LastName: "Lovelace",
		Locale: "en_GB", TimeZone: "Europe/London", Tags: []string{"alumni"}},
	CampaignID: "sample-campaign", CampaignName: "Spring Reunion", MessageID: "sample-message",
	UnsubscribeURL: "https://example.org/unsubscribe",
}

// Examples renders the WhatsApp params for a sample recipient (Ada
// Lovelace, tagged alumni) and campaign (Spring Reunion): the values of
// {{1}}, {{2}}, ... a provider's reviewers see. A contact attribute reads
// as its own name; a param that still renders empty is "example N", as a
// provider refuses empty examples.
func (c *Compiled) Examples() ([]string, error) {
	if c.Content.WhatsApp == nil {
		return nil, errors.New("the template has no WhatsApp provider template")
	}
	data := sampleData
	data.Contact.Attributes = map[string]any{}
	for _, p := range c.Params {
		for _, v := range p.Variables() {
			if key, ok := strings.CutPrefix(v, "contact.attributes."); ok {
				data.Contact.Attributes[key] = key
			}
		}
	}
	out := make([]string, len(c.Params))
	for i, p := range c.Params {
		v, err := p.Render(&data, c.Content.Defaults)
		if err != nil {
			return nil, fmt.Errorf("render the example of {{%d}}: %w", i+1, err)
		}
		if strings.TrimSpace(v) == "" {
			v = fmt.Sprintf("example %d", i+1)
		}
		out[i] = v
	}
	return out, nil
}
