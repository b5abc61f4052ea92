package event

// Channels a message can travel on. Payloads carry them in their "channel"
// field; Validate refuses any other value, because every consumer (pipeline
// routing, consent checks, analytics) branches on it and an unknown channel
// can only be dead-lettered.
const (
	// ChannelEmail is email through SMTP or an email provider.
	ChannelEmail = "email"
	// ChannelSMS is SMS through an SMS provider; the address is an E.164 number.
	ChannelSMS = "sms"
	// ChannelWhatsApp is the WhatsApp Business API; the address is an E.164 number.
	ChannelWhatsApp = "whatsapp"
)

// Channels lists every valid channel, for messages and for iteration.
var Channels = []string{ChannelEmail, ChannelSMS, ChannelWhatsApp}

// ValidChannel reports whether s is one of Channels. It is case-sensitive:
// channels travel in lower case.
func ValidChannel(s string) bool {
	switch s {
	case ChannelEmail, ChannelSMS, ChannelWhatsApp:
		return true
	}
	return false
}
