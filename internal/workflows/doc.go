// Package workflows is the Workflows module: automated journeys that a
// contact event starts, made of nodes (send, delay, wait_until, condition,
// random split, update contact, exit) and ended early by goals. It is the
// second half of the specification's flow 1 (contact.created ->
// segment.member.added -> workflow.run.started -> a pipeline message) and
// its flow 4 (goal detection on contact.updated).
//
// A workflow is a versioned definition; an edit writes a new version and
// runs finish on the version they started with. Lifecycle: created ->
// active <-> paused. Paused workflows start no runs, and their runs hold
// where they are until it is active again.
//
// Runs are rows, moved by transactions that commit the run, its path, the
// per-node counts and the events of the nodes executed (through the
// outbox) together, fenced on the run's step so concurrent wake-ups move
// it once (engine.go). Delays and timeouts are durable timers on
// ALUM_TIMERS (workflow.wake.<tenant>.<run>), with a sweep as the safety
// net for a timer that could not be armed.
//
// Consumers (docs/events.md):
//
//	WORKFLOWS_TRIGGER_CONSUMER  contact.>, segment.member.>, workflow.event.received
//	                            starts runs; checks goals and rule waits on contact changes;
//	                            fails the runs of deleted contacts
//	WORKFLOWS_MESSAGE_CONSUMER  pipeline.message.delivered, .opened, .clicked
//	                            records the reports of messages runs sent; wakes runs waiting for them
//	WORKFLOWS_TIMER_CONSUMER    timer.fired.workflow.wake.>  (ALUM_TIMERS)
//	                            wakes runs whose delay or timeout has come
//
// Publishes: workflow.created, workflow.activated, workflow.paused,
// workflow.run.started, workflow.node.executed, workflow.run.completed,
// workflow.run.failed, workflow.run.goal_reached, workflow.event.received
// (custom events posted to the API), and pipeline.message.queued for send
// nodes (sourceType "workflow", runId, step "<runId>:<step>", so a run
// sends once per node it enters).
package workflows
