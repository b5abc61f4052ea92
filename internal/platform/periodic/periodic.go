// Package periodic runs a task every period until stopped: the modules'
// sweeps, which catch what their durable timers missed.
package periodic

import (
	"context"
	"sync"
	"time"
)

// Task runs a function every period, never two at once.
type Task struct {
	every  time.Duration
	run    func(ctx context.Context)
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a task running run every period; Start it.
func New(every time.Duration, run func(ctx context.Context)) *Task {
	return &Task{every: every, run: run}
}

// Start runs the task in the background, first after one period, until
// Stop. The task's context outlives ctx's cancellation: Stop ends it.
func (t *Task) Start(ctx context.Context) {
	ctx, t.cancel = context.WithCancel(context.WithoutCancel(ctx))
	t.wg.Go(func() {
		tick := time.NewTicker(t.every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			t.run(ctx)
		}
	})
}

// Stop ends the task and waits for a run in progress.
func (t *Task) Stop() {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
}
