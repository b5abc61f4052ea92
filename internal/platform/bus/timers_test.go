package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
)

func TestTimersFireOnceAtTheirTimeCancelAndSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	first, err := bus.Open(ctx, bus.Config{DataDir: dir}, nil, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(1500 * time.Millisecond)
	if err := first.ScheduleTimer(ctx, "test.fire.a", at, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := first.ScheduleTimer(ctx, "test.fire.b", at, []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := first.CancelTimer(ctx, "test.fire.b"); err != nil {
		t.Fatal(err)
	}
	if err := first.ScheduleTimer(ctx, "bad key", at, nil); !errors.Is(err, bus.ErrBadTimerKey) {
		t.Fatalf("bad key: %v", err)
	}
	first.Close() // the schedule must outlive the process

	second, err := bus.Open(ctx, bus.Config{DataDir: dir}, nil, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	cons, err := second.JetStream().CreateOrUpdateConsumer(ctx, bus.TimersStream, jetstream.ConsumerConfig{
		Durable: "TIMER_TEST", FilterSubject: bus.TimerFiredPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("timer did not fire: %v", err)
	}
	firedAt := time.Now()
	if key := bus.TimerKey(msg.Subject()); key != "test.fire.a" || string(msg.Data()) != "a" {
		t.Fatalf("fired %s %q", key, msg.Data())
	}
	if firedAt.Before(at) {
		t.Fatalf("fired %s early", at.Sub(firedAt))
	}
	_ = msg.Ack()
	if extra, err := cons.Next(jetstream.FetchMaxWait(1500 * time.Millisecond)); err == nil {
		t.Fatalf("unexpected second firing: %s %q (cancelled timers must not fire)", extra.Subject(), extra.Data())
	}
}
