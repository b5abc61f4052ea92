// Package sequences runs 1:1 outreach sequences: a fixed series of steps
// for one contact at a time, each after a delay: messages (email, SMS,
// WhatsApp) sent through the pipeline, and manual steps (a call, a task)
// that wait for a person. A reply from the contact ends the enrollment
// (exit on reply), so nobody gets the next automated nudge after answering.
//
// Owns: sequences (definition and lifecycle) and sequence_enrollments (one
// contact's way through one sequence: its current step and when it runs).
//
// Lifecycle: created -> active <-> paused. Contacts are enrolled while the
// sequence is active, at most once at a time. While it is paused no step
// runs; steps that fell due meanwhile run within the sweep's period of its
// activation. A sequence's steps are fixed once created.
//
// Steps run on durable timers (ALUM_TIMERS, SEQUENCES_TIMER_CONSUMER), each
// fenced on the enrollment's current step, with a sweep for timers lost. A
// message step publishes pipeline.message.queued (sourceType sequence, the
// enrollment as runId, one send key per step) with sequence.step.executed
// in one transaction; a manual step publishes sequence.step.pending_manual
// and waits until a person completes it through the API.
//
// Consumes: inbox.message.received (SEQUENCES_REPLY_CONSUMER): the
// contact's enrollments in sequences that exit on reply end with
// sequence.enrollment.replied and sequence.enrollment.exited (replied);
// pipeline.message.bounced and contact.consent.revoked
// (SEQUENCES_STOP_CONSUMER): a hard bounce ends its enrollment (bounced),
// an opt-out the enrollments in sequences sending on that channel
// (unsubscribed).
//
// Publishes (source "sequences-service"): sequence.created, activated,
// paused; sequence.enrollment.created, completed, replied, exited;
// sequence.step.executed, pending_manual; and the steps'
// pipeline.message.queued.
package sequences
