// Package event is the event contract every module speaks: the envelope that
// travels on the bus, one constant and one payload type per subject of the
// specification, validation, the version rule, and the correlation/causation
// ids carried through context.Context.
//
// It is deliberately low level: it imports nothing of this project and no
// third-party package but the UUID generator, so every module, the bus and
// the outbox can depend on it without pulling anything else in.
package event
