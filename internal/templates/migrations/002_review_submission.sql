-- The WhatsApp review's submission: which template.hsm.submitted event
-- started it (TEMPLATES_REVIEW_CONSUMER acts only on the current one, so a
-- redelivered or superseded event changes nothing), the version whose
-- content was submitted, and the provider's id of the template once it has
-- one.
ALTER TABLE templates ADD COLUMN hsm_submission TEXT NOT NULL DEFAULT '';
ALTER TABLE templates ADD COLUMN hsm_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE templates ADD COLUMN hsm_provider_id TEXT NOT NULL DEFAULT '';
