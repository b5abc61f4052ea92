package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/alumoutreach/alumoutreach/internal/event"
)

// EventSubjects are ALUM_EVENTS' subjects: one wildcard per domain. A stream
// cannot take ">" (it would overlap $JS), so the nine domains are listed.
func EventSubjects() []string {
	out := make([]string, 0, len(event.Domains))
	for _, d := range event.Domains {
		out = append(out, d+".>")
	}
	return out
}

// controlDuplicateWindow is the duplicate window of the DLQ and timer
// streams. Their writes are few, so remembering ids costs nothing there,
// and their ids are what makes a dead letter written by both the handler
// and the advisory worker, or a timer scheduled by several instances, one
// message; they keep NATS's default.
const controlDuplicateWindow = 2 * time.Minute

func (b *Bus) streamConfigs() []jetstream.StreamConfig {
	c := b.cfg
	return []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "AlumOutreach domain events",
			Subjects:    EventSubjects(),
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      c.MaxAge,
			MaxBytes:    c.MaxBytes,
			Replicas:    c.Replicas,
			Duplicates:  c.DuplicateWindow,
			Storage:     jetstream.FileStorage,
		},
		{
			Name:        DLQStream,
			Description: "Dead-lettered events (dlq.{subject}) and their replays (replay.{consumer}.{subject})",
			Subjects:    []string{dlqPrefix + ">", replayPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			AllowMsgTTL: true, // replay messages expire once consumed
			MaxAge:      c.DLQMaxAge,
			Replicas:    c.Replicas,
			Duplicates:  controlDuplicateWindow,
			Storage:     jetstream.FileStorage,
		},
		{
			Name:              TimersStream,
			Description:       "Durable timers: message schedules that fire into timer.>",
			Subjects:          []string{timerPrefix + ">"},
			Retention:         jetstream.LimitsPolicy,
			Replicas:          c.Replicas,
			Duplicates:        controlDuplicateWindow,
			Storage:           jetstream.FileStorage,
			AllowMsgSchedules: true,
			AllowMsgTTL:       true, // fired timers expire; pending schedules never do
		},
		{
			Name:        AdvisoriesStream,
			Description: "MAX_DELIVERIES advisories of our consumers, captured so the DLQ worker never misses one",
			Subjects: []string{
				maxDeliveriesSubject(EventsStream, "*"),
				maxDeliveriesSubject(DLQStream, "*"),
			},
			Retention: jetstream.LimitsPolicy,
			MaxAge:    c.DLQMaxAge,
			Replicas:  c.Replicas,
			Storage:   jetstream.FileStorage,
		},
	}
}

func maxDeliveriesSubject(stream, consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
}

// EnsureStreams creates the streams or updates them to the configured
// settings. It is idempotent: every start calls it.
func (b *Bus) EnsureStreams(ctx context.Context) error {
	for _, sc := range b.streamConfigs() {
		if _, err := b.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("create or update stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
