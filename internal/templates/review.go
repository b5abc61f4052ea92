package templates

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
)

// SubmitReview sends a WhatsApp template's provider template (name,
// language, category, text) for the provider's review:
// template.hsm.submitted, on which TEMPLATES_REVIEW_CONSUMER hands it to
// the provider (ReviewSubmitter). Until approved, the template can be sent
// only inside the session window.
func (s *Service) SubmitReview(ctx context.Context, tenant, id string) (*Template, error) {
	ctx = event.EnsureCorrelation(ctx)
	var t *Template
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		var err error
		if t, err = s.get(ctx, tx, tenant, id, 0, true); err != nil {
			return err
		}
		w := t.Content.WhatsApp
		if t.Channel != event.ChannelWhatsApp || w == nil {
			return fault.New(fault.Conflict, "not_a_provider_template", "template %s has no WhatsApp provider template (content.whatsapp) to submit", id)
		}
		if t.Review != nil && t.Review.Status == ReviewApproved && t.Review.Name == w.Name && t.Review.Language == w.Language {
			return fault.New(fault.Conflict, "already_approved", "template %s (%s, %s) is approved already", id, w.Name, w.Language)
		}
		env, err := event.New(ctx, event.TemplateHSMSubmitted, event.SourceTemplates, tenant, event.TemplateHSMData{
			TemplateID: id, ProviderTemplateName: w.Name, Language: w.Language, Category: w.Category})
		if err != nil {
			return err
		}
		// A new submission: the provider's id of the template is learnt
		// again from the provider's answer to it.
		t.Review = &Review{Status: ReviewSubmitted, Name: w.Name, Language: w.Language, Category: w.Category,
			submission: env.ID, version: t.Version}
		t.UpdatedAt = s.clock()
		if err := s.storeReview(ctx, tx, tenant, t); err != nil {
			return err
		}
		return emit(env)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (s *Service) storeReview(ctx context.Context, tx querier, tenant string, t *Template) error {
	r := t.Review
	_, err := tx.ExecContext(ctx, `UPDATE templates SET hsm_status = $3, hsm_name = $4, hsm_language = $5, hsm_category = $6,
		hsm_reason = $7, hsm_provider_id = $8, hsm_submission = $9, hsm_version = $10, updated_at = $11 WHERE tenant_id = $1 AND id = $2`,
		tenant, t.ID, r.Status, r.Name, r.Language, r.Category, r.Reason, r.ProviderID, r.submission, r.version, t.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("store template review: %w", err)
	}
	return nil
}

// ApplyReview records the provider's verdict on the tenant's templates
// submitted under name and language, and publishes template.hsm.approved
// or template.hsm.rejected. It reports how many templates it updated; a
// verdict repeated by the provider changes nothing the second time.
func (s *Service) ApplyReview(ctx context.Context, tenant, name, language string, approved bool, reason, providerID string) (int, error) {
	status := ReviewRejected
	if approved {
		status = ReviewApproved
	}
	updated := 0
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		updated = 0
		rows, err := tx.QueryContext(ctx, `SELECT id FROM templates WHERE tenant_id = $1 AND hsm_name = $2 AND hsm_language = $3 AND hsm_status <> $4`,
			tenant, name, language, status)
		if err != nil {
			return fmt.Errorf("find reviewed templates: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			t, err := s.get(ctx, tx, tenant, id, 0, true)
			if err != nil {
				return err
			}
			if err := s.applyVerdict(ctx, tx, emit, tenant, t, approved, reason, providerID); err != nil {
				return err
			}
			updated++
		}
		return nil
	})
	return updated, err
}

// applyVerdict records the provider's verdict on t (locked in tx) and
// emits template.hsm.approved or template.hsm.rejected with the reason.
// It is the one path every verdict takes: the provider's webhook
// (ApplyReview), and the provider's answer to the submission itself
// (TEMPLATES_REVIEW_CONSUMER: a refusal, a decision made at once, the
// sandbox's approval).
func (s *Service) applyVerdict(ctx context.Context, tx querier, emit outbox.Emit, tenant string, t *Template, approved bool, reason, providerID string) error {
	r := t.Review
	r.Status, r.Reason = ReviewApproved, ""
	if !approved {
		if reason == "" {
			reason = "rejected by the provider without a reason"
		}
		r.Status, r.Reason = ReviewRejected, reason
	}
	if providerID != "" {
		r.ProviderID = providerID
	}
	t.UpdatedAt = s.clock()
	if err := s.storeReview(ctx, tx, tenant, t); err != nil {
		return err
	}
	data := event.TemplateHSMData{TemplateID: t.ID, ProviderTemplateName: r.Name, Language: r.Language,
		Category: r.Category, ProviderTemplateID: r.ProviderID}
	var env event.Envelope
	var err error
	if approved {
		env, err = event.New(ctx, event.TemplateHSMApproved, event.SourceTemplates, tenant, data)
	} else {
		data.Reason = reason
		env, err = event.New(ctx, event.TemplateHSMRejected, event.SourceTemplates, tenant, event.TemplateHSMRejectedData{TemplateHSMData: data})
	}
	if err != nil {
		return err
	}
	return emit(env)
}
