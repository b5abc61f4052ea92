package workflows

import (
	"context"
	"sync"
	"time"
)

// Sweeper wakes the runs no timer woke: a timer that could not be armed
// after its commit (the bus was down) or that was lost, and the runs held
// while their workflow was paused, once it is active again. Timers do the
// waking on time; the sweep is the safety net, so it only takes runs that
// are Grace overdue. Every instance may sweep: moves are fenced.
type Sweeper struct {
	svc      *Service
	interval time.Duration
	grace    time.Duration
	batch    int
	cancel   context.CancelFunc
	done     sync.WaitGroup
}

// SweeperConfig tunes the sweep; zero values take the defaults.
type SweeperConfig struct {
	// Interval between sweeps (default 5s).
	Interval time.Duration
	// Grace is how late a run must be before the sweep wakes it (default 30s).
	Grace time.Duration
	// Batch is how many runs one query takes (default 500).
	Batch int
}

// NewSweeper returns a sweeper over svc's runs.
func NewSweeper(svc *Service, cfg SweeperConfig) *Sweeper {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	return &Sweeper{svc: svc, interval: cfg.Interval, grace: cfg.Grace, batch: cfg.Batch}
}

// Start sweeps until Stop.
func (w *Sweeper) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		t := time.NewTicker(w.interval)
		defer t.Stop()
		for {
			w.sweep(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-w.svc.wake:
			}
		}
	}()
}

// Stop ends the sweep and waits for the one in progress.
func (w *Sweeper) Stop() {
	if w.cancel != nil {
		w.cancel()
		w.done.Wait()
	}
}

type runRef struct {
	tenant, id string
	step       int64
}

func (w *Sweeper) sweep(ctx context.Context) {
	s := w.svc
	overdue := millis(s.clock().Add(-w.grace))
	w.each(ctx, wakeTime, `SELECT tenant_id, id, step FROM workflow_runs WHERE status = 'waiting' AND wake_at < $1
		ORDER BY wake_at LIMIT $2`, overdue, w.batch)
	w.each(ctx, wakeRelease, `SELECT r.tenant_id, r.id, r.step FROM workflow_runs r
		JOIN workflows w ON w.tenant_id = r.tenant_id AND w.id = r.workflow_id
		WHERE r.status = 'held' AND w.status = 'active' LIMIT $1`, w.batch)
}

// each wakes the runs query finds, batch after batch, until none is left
// or a batch moves nothing.
func (w *Sweeper) each(ctx context.Context, why wakeReason, query string, args ...any) {
	s := w.svc
	for ctx.Err() == nil {
		rows, err := s.db.Reader().QueryContext(ctx, query, args...)
		if err != nil {
			s.log.WarnContext(ctx, "workflow sweep", "err", err)
			return
		}
		var refs []runRef
		for rows.Next() {
			var r runRef
			if err := rows.Scan(&r.tenant, &r.id, &r.step); err != nil {
				break
			}
			refs = append(refs, r)
		}
		rows.Close()
		moved := 0
		for _, r := range refs {
			if err := s.Wake(ctx, r.tenant, r.id, r.step, why); err != nil {
				s.log.WarnContext(ctx, "workflow sweep: run not woken", "tenant", r.tenant, "run", r.id, "err", err)
				continue
			}
			moved++
		}
		if len(refs) < w.batch || moved == 0 {
			return
		}
	}
}
