package bench_test

import (
	"context"
	"io"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/bench"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
)

// The message-events scenario carries exactly the events it claims for
// each shape of message, every one of them once, and counts every message.
func TestMessageEventsCarriesEachShapesEvents(t *testing.T) {
	t.Parallel()
	const n = 1200 // three batches: the in-flight bound holds the third back
	tests := []struct {
		name               string
		delivered, tracked bool
		want               []string
	}{
		{"sandbox campaign", true, true, []string{event.PipelineMessageQueued, event.PipelineMessageSent, event.PipelineMessageDelivered,
			event.CampaignMessageSent, event.CampaignMessageDelivered}},
		{"SMTP campaign", false, true, []string{event.PipelineMessageQueued, event.PipelineMessageSent, event.CampaignMessageSent}},
		{"sandbox pipeline", true, false, []string{event.PipelineMessageQueued, event.PipelineMessageSent, event.PipelineMessageDelivered}},
		{"SMTP pipeline", false, false, []string{event.PipelineMessageQueued, event.PipelineMessageSent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r, err := bench.MessageEvents(ctx, dir, bench.Options{Messages: n, InFlight: 1000, Delivered: tt.delivered, Tracked: tt.tracked, Sync: "1s", Out: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			if r.Events != n || r.Unit != "messages" || r.CPUPerItem <= 0 {
				t.Errorf("result %+v, want %d messages and a CPU time per message", r, n)
			}
			want := map[string]uint64{}
			for _, s := range tt.want {
				want[s] = n
			}
			if got := subjectCounts(t, dir); !maps.Equal(got, want) {
				t.Errorf("stream holds %v, want %v", got, want)
			}
		})
	}
}

// subjectCounts reopens the scenario's stream and counts its events by subject.
func subjectCounts(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.NATS.ListenAddr = dir, ""
	ctx := context.Background()
	b, err := app.OpenBus(ctx, cfg, bus.NewMetrics(nil), bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := b.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}
