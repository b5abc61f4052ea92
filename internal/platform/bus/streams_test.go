package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
)

// ALUM_EVENTS takes the configured duplicate window (its ids cost memory in
// proportion to the event rate); the DLQ and timer streams keep two
// minutes, because their ids are what merges a dead letter written twice or
// a timer scheduled by several instances.
func TestDuplicateWindowsOfTheStreams(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		configured time.Duration
		events     time.Duration
	}{
		{0, 30 * time.Second}, // the default
		{5 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), DuplicateWindow: tt.configured}, bus.NewMetrics(nil), bustest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]time.Duration{bus.EventsStream: tt.events, bus.DLQStream: 2 * time.Minute, bus.TimersStream: 2 * time.Minute}
		for name, window := range want {
			s, err := b.JetStream().Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.Duplicates; got != window {
				t.Errorf("configured %s: %s keeps ids %s, want %s", tt.configured, name, got, window)
			}
		}
		b.Close()
	}
}
