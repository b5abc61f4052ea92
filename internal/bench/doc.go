// Package bench holds the `alumoutreach bench` scenarios: the machine's
// JetStream ceiling (raw async publish plus durable consume), our full event
// path (state change + outbox + relay + bus + ANALYTICS_INGEST_CONSUMER),
// the latency from commit to consumer acknowledgement at a steady rate, and
// the events a message must cause, carried with nothing else done: the
// floor under the pipeline and campaign benchmarks.
// Each scenario runs against real components in a temporary data directory
// and reports figures; none asserts a time.
package bench
