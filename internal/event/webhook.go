package event

// SourceWebhooks is the envelope source of events the webhooks module
// (the specification's WebhookController) publishes.
const SourceWebhooks = "webhooks-service"

// Webhook subjects: what providers told us, verified and normalised but not
// yet matched to our records. Status events carry ProviderEventData and are
// turned into pipeline.message.* by the pipeline; inbound ones carry
// InboundMessageData and become inbox threads.
const (
	// WebhookEmailInbound carries an email received at one of our addresses.
	WebhookEmailInbound = "webhook.email.inbound"
	// WebhookEmailDelivered carries an email provider's delivery report.
	WebhookEmailDelivered = "webhook.email.delivered"
	// WebhookEmailOpened carries an email provider's open report.
	WebhookEmailOpened = "webhook.email.opened"
	// WebhookEmailClicked carries an email provider's click report.
	WebhookEmailClicked = "webhook.email.clicked"
	// WebhookEmailBounced carries an email provider's bounce report.
	WebhookEmailBounced = "webhook.email.bounced"
	// WebhookEmailComplained carries an email provider's spam-complaint report.
	WebhookEmailComplained = "webhook.email.complained"
	// WebhookSMSInbound carries an SMS received on one of our numbers.
	WebhookSMSInbound = "webhook.sms.inbound"
	// WebhookSMSDelivered carries an SMS provider's delivery report.
	WebhookSMSDelivered = "webhook.sms.delivered"
	// WebhookWhatsAppInbound carries a WhatsApp message received on one of our numbers.
	WebhookWhatsAppInbound = "webhook.whatsapp.inbound"
	// WebhookWhatsAppDelivered carries a WhatsApp delivery report.
	WebhookWhatsAppDelivered = "webhook.whatsapp.delivered"
	// WebhookWhatsAppRead carries a WhatsApp read receipt.
	WebhookWhatsAppRead = "webhook.whatsapp.read"
)

func init() {
	register(WebhookEmailInbound, func() Payload { return &WebhookEmailInboundData{} })
	register(WebhookEmailDelivered, func() Payload { return &WebhookEmailDeliveredData{} })
	register(WebhookEmailOpened, func() Payload { return &WebhookEmailOpenedData{} })
	register(WebhookEmailClicked, func() Payload { return &WebhookEmailClickedData{} })
	register(WebhookEmailBounced, func() Payload { return &WebhookEmailBouncedData{} })
	register(WebhookEmailComplained, func() Payload { return &WebhookEmailComplainedData{} })
	register(WebhookSMSInbound, func() Payload { return &WebhookSMSInboundData{} })
	register(WebhookSMSDelivered, func() Payload { return &WebhookSMSDeliveredData{} })
	register(WebhookWhatsAppInbound, func() Payload { return &WebhookWhatsAppInboundData{} })
	register(WebhookWhatsAppDelivered, func() Payload { return &WebhookWhatsAppDeliveredData{} })
	register(WebhookWhatsAppRead, func() Payload { return &WebhookWhatsAppReadData{} })
}

// ProviderEventData is a provider's status report about a message we sent.
// The provider's raw body is not carried, to keep events small.
type ProviderEventData struct {
	// Provider names the adapter that received it, e.g. "smtp", "twilio", "meta".
	Provider string `json:"provider"`
	// Channel is the channel of the message reported on.
	Channel string `json:"channel"`
	// ExternalID is the provider's id for the message; the pipeline matches on it.
	ExternalID string `json:"externalId"`
	// MessageID is our message id, when the provider echoed it back.
	MessageID string `json:"messageId,omitempty"`
	// RecipientAddress is the address or number reported on.
	RecipientAddress string `json:"recipientAddress,omitempty"`
	// Status is the provider's own status word, e.g. "delivered", "read", "failed".
	Status string `json:"status,omitempty"`
	// OccurredAt is when the provider says it happened, or when we received
	// the report if the provider gives no time.
	OccurredAt Time `json:"occurredAt"`
	// Reason is the provider's explanation, on bounces, complaints and failures.
	Reason string `json:"reason,omitempty"`
	// URL is the link clicked, on clicks.
	URL string `json:"url,omitempty"`
	// BounceType is BounceHard or BounceSoft, on bounces.
	BounceType string `json:"bounceType,omitempty"`
}

// Validate requires provider, a valid channel, externalId and occurredAt.
func (d ProviderEventData) Validate() error {
	var c checker
	c.str("provider", d.Provider)
	c.channel("channel", d.Channel)
	c.str("externalId", d.ExternalID)
	c.timestamp("occurredAt", d.OccurredAt)
	return c.err()
}

// WebhookEmailDeliveredData is the payload of webhook.email.delivered.
type WebhookEmailDeliveredData = ProviderEventData

// WebhookEmailOpenedData is the payload of webhook.email.opened.
type WebhookEmailOpenedData = ProviderEventData

// WebhookEmailClickedData is the payload of webhook.email.clicked; URL is set.
type WebhookEmailClickedData = ProviderEventData

// WebhookEmailBouncedData is the payload of webhook.email.bounced; BounceType and Reason are set.
type WebhookEmailBouncedData = ProviderEventData

// WebhookEmailComplainedData is the payload of webhook.email.complained.
type WebhookEmailComplainedData = ProviderEventData

// WebhookSMSDeliveredData is the payload of webhook.sms.delivered.
type WebhookSMSDeliveredData = ProviderEventData

// WebhookWhatsAppDeliveredData is the payload of webhook.whatsapp.delivered.
type WebhookWhatsAppDeliveredData = ProviderEventData

// WebhookWhatsAppReadData is the payload of webhook.whatsapp.read.
type WebhookWhatsAppReadData = ProviderEventData

// InboundMessageData is a message a contact sent us, as the provider
// delivered it. Producers cap Text and HTML so that the event stays under the
// size limit.
type InboundMessageData struct {
	// Provider names the adapter that received it.
	Provider string `json:"provider"`
	// Channel is the channel it arrived on.
	Channel string `json:"channel"`
	// ExternalID is the provider's id for it (for email, the Message-ID header);
	// consumers deduplicate provider retries on it.
	ExternalID string `json:"externalId"`
	// From is the sender's address or number.
	From string `json:"from"`
	// To is our address or number it was sent to; it selects the inbox.
	To string `json:"to"`
	// Subject is the email subject; empty for SMS and WhatsApp.
	Subject string `json:"subject,omitempty"`
	// Text is the plain-text body.
	Text string `json:"text,omitempty"`
	// HTML is the HTML body of an email, when it has one.
	HTML string `json:"html,omitempty"`
	// InReplyTo is the provider id of the message this answers (the email
	// In-Reply-To header, WhatsApp's context id): one of our ExternalIDs when
	// the contact replied to us.
	InReplyTo string `json:"inReplyTo,omitempty"`
	// ReceivedAt is when the provider received it.
	ReceivedAt Time `json:"receivedAt"`
}

// Validate requires provider, a valid channel, externalId, from, to and receivedAt.
func (d InboundMessageData) Validate() error {
	var c checker
	c.str("provider", d.Provider)
	c.channel("channel", d.Channel)
	c.str("externalId", d.ExternalID)
	c.str("from", d.From)
	c.str("to", d.To)
	c.timestamp("receivedAt", d.ReceivedAt)
	return c.err()
}

// WebhookEmailInboundData is the payload of webhook.email.inbound.
type WebhookEmailInboundData = InboundMessageData

// WebhookSMSInboundData is the payload of webhook.sms.inbound.
type WebhookSMSInboundData = InboundMessageData

// WebhookWhatsAppInboundData is the payload of webhook.whatsapp.inbound.
type WebhookWhatsAppInboundData = InboundMessageData
