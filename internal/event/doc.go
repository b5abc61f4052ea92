// Package event is the event contract every module speaks: the envelope that
// travels on the bus, one constant and one payload type per subject of the
// specification (and per subject added to it, listed in docs/events.md), validation, the version rule, and the correlation/causation
// ids carried through context.Context.
//
// It is deliberately low level: it imports nothing of this project and no
// third-party package but the UUID generator, so every module, the bus and
// the outbox can depend on it without pulling anything else in.
//
// # Subjects and payloads
//
// Each domain of the specification has one file (contact.go, segment.go,
// template.go, campaign.go, pipeline.go, workflow.go, sequence.go, inbox.go,
// webhook.go) with its subject constants, the Source constant its module
// writes in the envelope, and a payload type named after each subject
// (ContactCreated -> ContactCreatedData). Subjects whose payloads have the
// same shape share one struct through type aliases: all ten
// pipeline.message.* subjects carry MessageData, all webhook status reports
// carry ProviderEventData.
//
// Payload conventions, so that consumers can rely on them:
//   - JSON field names are camelCase; where the specification gives an
//     example payload, its fields are kept exactly.
//   - Timestamps are Time: RFC 3339 in UTC with milliseconds, like the
//     envelope's. A zero optional timestamp is omitted.
//   - Optional fields are omitted when empty. Adding fields is how payloads
//     evolve (minor versions), so consumers ignore fields they do not know.
//   - Validate checks that required fields are present, that counts are not
//     negative and that channels are one of Channels, and its message names
//     each offending field by its JSON name. It does not check other
//     enumerations (statuses, kinds, reasons), so a producer on a newer minor
//     version can add values without older consumers dead-lettering its events.
//   - Contact changes carry the contact's version, and events derived from
//     them carry it on, so consumers can discard events that arrive out of order.
//   - Payloads carry ids and short labels, never bodies or rendered content
//     beyond a preview: events must stay under DefaultMaxSize.
package event
