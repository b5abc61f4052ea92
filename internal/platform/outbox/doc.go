// Package outbox makes a state change and the events that describe it one
// atomic write, and relays those events to the bus.
//
// A module runs its change through Outbox.InTx and emits its events there;
// they are rows of the outbox table in the same transaction. After commit
// the relay is woken at once (in process; through NOTIFY on PostgreSQL for
// the relay of another instance), publishes the rows in order in batches
// with Nats-Msg-Id = event id, and stamps them published. If NATS is
// unreachable the rows wait and the API keeps accepting changes; the relay
// catches up when NATS returns. On PostgreSQL one relay per cluster holds an
// advisory lock, so several instances never publish out of order.
package outbox
