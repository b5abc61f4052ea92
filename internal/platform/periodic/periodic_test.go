package periodic

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestTaskRunsUntilStopped(t *testing.T) {
	var runs atomic.Int32
	task := New(5*time.Millisecond, func(ctx context.Context) { runs.Add(1) })
	task.Start(context.Background())
	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("ran %d times in 5 s", runs.Load())
		}
		time.Sleep(time.Millisecond)
	}
	task.Stop()
	after := runs.Load()
	time.Sleep(30 * time.Millisecond)
	if runs.Load() != after {
		t.Errorf("ran after Stop: %d then %d", after, runs.Load())
	}
	task.Stop() // a second Stop is harmless
}
