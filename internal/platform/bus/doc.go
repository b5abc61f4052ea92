// Package bus is the platform's JetStream layer: it runs the embedded NATS
// server (or connects to an external cluster), creates the streams, publishes
// events with their id as Nats-Msg-Id, runs durable pull consumers with
// retries and dead letters, operates the dead-letter queue, and exports the
// event metrics of the specification.
//
// Streams (DESIGN.md §3):
//   - ALUM_EVENTS: the nine domains (contact.> ... webhook.>), Limits retention,
//     so every durable consumer gets its own copy and events can be replayed.
//   - ALUM_EVENTS_DLQ: dlq.{original subject} entries, and replay.{consumer}.>
//     messages that re-deliver a dead letter to the one consumer that failed.
//   - ALUM_TIMERS: timer.> with message schedules, for durable timers;
//     StartTimerConsumer runs a module's fired timers with the same runner
//     as events, but without a DLQ (a timer failing for good is logged).
//   - ALUM_ADVISORIES: the server's MAX_DELIVERIES advisories for our streams,
//     captured so that a handler that crashed or hung on its last attempt still
//     reaches the DLQ (advisories are otherwise only sent to live subscribers).
//
// Retries: consumers keep AckWait and MaxDeliver and no server BackOff
// (BackOff would replace AckWait); the runner delays a retry with
// NakWithDelay(backoff[attempt-1]).
package bus
