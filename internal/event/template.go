package event

// SourceTemplates is the envelope source of events the templates module publishes.
const SourceTemplates = "templates-service"

// Template subjects. Lifecycle events let analytics label messages by
// template; the hsm events follow a WhatsApp template (an HSM, "highly
// structured message") through the provider's review, without which it
// cannot be sent outside the 24-hour window.
const (
	// TemplateCreated announces a new template draft.
	TemplateCreated = "template.created"
	// TemplateUpdated announces new content: a new template version.
	TemplateUpdated = "template.updated"
	// TemplateActivated announces that a template may now be used for sending.
	TemplateActivated = "template.activated"
	// TemplateArchived announces that a template may no longer be picked for new sends.
	TemplateArchived = "template.archived"
	// TemplateDeleted announces that a template is gone.
	TemplateDeleted = "template.deleted"
	// TemplateHSMSubmitted announces a WhatsApp template sent to the provider for review.
	TemplateHSMSubmitted = "template.hsm.submitted"
	// TemplateHSMApproved announces that the provider approved a WhatsApp template.
	TemplateHSMApproved = "template.hsm.approved"
	// TemplateHSMRejected announces that the provider rejected a WhatsApp template, with its reason.
	TemplateHSMRejected = "template.hsm.rejected"
)

func init() {
	register(TemplateCreated, func() Payload { return &TemplateCreatedData{} })
	register(TemplateUpdated, func() Payload { return &TemplateUpdatedData{} })
	register(TemplateActivated, func() Payload { return &TemplateActivatedData{} })
	register(TemplateArchived, func() Payload { return &TemplateArchivedData{} })
	register(TemplateDeleted, func() Payload { return &TemplateDeletedData{} })
	register(TemplateHSMSubmitted, func() Payload { return &TemplateHSMSubmittedData{} })
	register(TemplateHSMApproved, func() Payload { return &TemplateHSMApprovedData{} })
	register(TemplateHSMRejected, func() Payload { return &TemplateHSMRejectedData{} })
}

// TemplateData describes a template at one version. Content is not carried:
// consumers that render read it by id and version from the templates module.
type TemplateData struct {
	// TemplateID identifies the template in messages and every later event.
	TemplateID string `json:"templateId"`
	// Name is the display name, for analytics labels.
	Name string `json:"name"`
	// Channel is the channel the template is written for.
	Channel string `json:"channel"`
	// Version is the content version, 1 on creation, raised by each update.
	Version int64 `json:"version"`
}

// Validate requires templateId, name, a valid channel and a positive version.
func (d TemplateData) Validate() error {
	var c checker
	c.str("templateId", d.TemplateID)
	c.str("name", d.Name)
	c.channel("channel", d.Channel)
	c.positive("version", d.Version)
	return c.err()
}

// TemplateCreatedData is the payload of template.created.
type TemplateCreatedData = TemplateData

// TemplateUpdatedData is the payload of template.updated.
type TemplateUpdatedData = TemplateData

// TemplateActivatedData is the payload of template.activated.
type TemplateActivatedData = TemplateData

// TemplateArchivedData is the payload of template.archived.
type TemplateArchivedData = TemplateData

// TemplateDeletedData removes a template; messages already sent keep its id.
type TemplateDeletedData struct {
	// TemplateID is the template removed.
	TemplateID string `json:"templateId"`
	// Name is the last display name, kept so reports can still label old messages.
	Name string `json:"name,omitempty"`
}

// Validate requires templateId.
func (d TemplateDeletedData) Validate() error {
	var c checker
	c.str("templateId", d.TemplateID)
	return c.err()
}

// TemplateHSMData follows a WhatsApp template through the provider's review.
type TemplateHSMData struct {
	// TemplateID is our template.
	TemplateID string `json:"templateId"`
	// ProviderTemplateName is the name the template is registered under at
	// the provider, which sends must quote.
	ProviderTemplateName string `json:"providerTemplateName"`
	// Language is the provider's language code, e.g. "en_US".
	Language string `json:"language"`
	// Category is the provider's category, e.g. "MARKETING", "UTILITY".
	Category string `json:"category,omitempty"`
	// ProviderTemplateID is the provider's id for the template, once it has one.
	ProviderTemplateID string `json:"providerTemplateId,omitempty"`
	// Reason is the provider's rejection reason; set on template.hsm.rejected only.
	Reason string `json:"reason,omitempty"`
}

// Validate requires templateId, providerTemplateName and language.
func (d TemplateHSMData) Validate() error {
	var c checker
	d.check(&c)
	return c.err()
}

func (d TemplateHSMData) check(c *checker) {
	c.str("templateId", d.TemplateID)
	c.str("providerTemplateName", d.ProviderTemplateName)
	c.str("language", d.Language)
}

// TemplateHSMSubmittedData is the payload of template.hsm.submitted.
type TemplateHSMSubmittedData = TemplateHSMData

// TemplateHSMApprovedData is the payload of template.hsm.approved.
type TemplateHSMApprovedData = TemplateHSMData

// TemplateHSMRejectedData is the payload of template.hsm.rejected: the
// review fields plus a required reason, which the template's author needs to
// fix it.
type TemplateHSMRejectedData struct {
	TemplateHSMData
}

// Validate requires what TemplateHSMData does, and reason.
func (d TemplateHSMRejectedData) Validate() error {
	var c checker
	d.check(&c)
	c.str("reason", d.Reason)
	return c.err()
}
