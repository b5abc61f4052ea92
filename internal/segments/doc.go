// Package segments keeps rule-based segments of a tenant's contacts and
// their membership, live: a contact that changes enters or leaves the
// segments whose rules it now meets, and a segment whose rules change is
// evaluated again over every contact.
//
// Owns: segments (definitions: name, rule tree, version, member count),
// segment_generations (a per-tenant counter that invalidates cached rules),
// segment_contacts (the module's own copy of each contact, in the shape the
// rules compile to SQL against; newest version wins, deleted contacts stay
// as tombstones) and segment_members (the latest decision per segment and
// contact with the contact version it was made on; older decisions never
// overwrite newer ones).
//
// The rule language is package rule: parsed and validated once, matched in
// Go for one changed contact, compiled to SQL for a full evaluation. A
// differential test keeps the two in agreement.
//
// Publishes (source "segments-service"): segment.created, segment.updated,
// segment.deleted, segment.evaluated, segment.member.added,
// segment.member.removed. Member events carry the contact version they
// were decided on.
//
// Consumers:
//   - SEGMENTS_CONTACT_CONSUMER (contact.>): reads the contact's current
//     snapshot through ContactSource (wired by the app to the contacts
//     module), stores it if it is newer than the copy held, evaluates it
//     against the tenant's segments and records and publishes only the
//     membership changes. Because the snapshot, not the event, is applied,
//     redelivered, duplicated and out-of-order events all converge on the
//     contact's latest state.
//   - SEGMENTS_DEFINITION_CONSUMER (segment.created, segment.updated):
//     evaluates a new segment, or one whose rules changed, over all the
//     tenant's contacts, in chunks, publishing member events for the
//     differences and a segment.evaluated summary.
//
// HTTP: /api/v1/segments (see HTTP.RegisterRoutes and docs/api.md).
package segments
