package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Durable timers on ALUM_TIMERS with JetStream message schedules: a
// schedule is a message on timer.schedule.{key} that the server publishes to
// timer.fired.{key} at its time. Timers survive restarts (they are stream
// messages), fire once (one schedule per key; a durable consumer shares the
// fired message among instances), and are cancelled by purging their key.
const (
	timerSchedulePrefix = timerPrefix + "schedule."
	// TimerFiredPrefix starts the subjects timers fire on; a consumer of
	// timers filters on TimerFiredPrefix + ">" or a narrower key prefix.
	TimerFiredPrefix = timerPrefix + "fired."
)

// firedTTL is how long a fired timer stays in the stream: long enough for
// any consumer outage we recover from, short enough that ALUM_TIMERS (which
// has no MaxAge, so schedules months ahead survive) does not grow forever.
const firedTTL = "168h"

// ErrBadTimerKey is returned for keys that are not dot-separated tokens.
var ErrBadTimerKey = errors.New("timer key must be dot-separated tokens of letters, digits, '-' and '_'")

func checkTimerKey(key string) error {
	if key == "" {
		return ErrBadTimerKey
	}
	for _, tok := range strings.Split(key, ".") {
		if tok == "" {
			return ErrBadTimerKey
		}
		for _, r := range tok {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return ErrBadTimerKey
			}
		}
	}
	return nil
}

// ScheduleTimer makes data arrive on timer.fired.{key} at (or, if at has
// passed, right after) the given time. Scheduling a key again replaces its
// previous schedule. Keys name what the timer is for, e.g.
// "campaign.start.<campaignId>".
func (b *Bus) ScheduleTimer(ctx context.Context, key string, at time.Time, data []byte) error {
	if err := checkTimerKey(key); err != nil {
		return fmt.Errorf("schedule %q: %w", key, err)
	}
	msg := &nats.Msg{Subject: timerSchedulePrefix + key, Data: data, Header: nats.Header{}}
	// The server reads fractional seconds; the client helper would drop them.
	msg.Header.Set("Nats-Schedule", "@at "+at.UTC().Format(time.RFC3339Nano))
	msg.Header.Set("Nats-Schedule-Target", TimerFiredPrefix+key)
	msg.Header.Set(jetstream.ScheduleTTLHeader, firedTTL)
	if _, err := b.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("schedule timer %s: %w", key, err)
	}
	return nil
}

// CancelTimer removes key's pending schedule; a timer already fired is not
// recalled.
func (b *Bus) CancelTimer(ctx context.Context, key string) error {
	if err := checkTimerKey(key); err != nil {
		return fmt.Errorf("cancel %q: %w", key, err)
	}
	s, err := b.js.Stream(ctx, TimersStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", TimersStream, err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(timerSchedulePrefix+key)); err != nil {
		return fmt.Errorf("cancel timer %s: %w", key, err)
	}
	return nil
}

// TimerKey returns the key of a fired timer's subject.
func TimerKey(subject string) string { return strings.TrimPrefix(subject, TimerFiredPrefix) }
