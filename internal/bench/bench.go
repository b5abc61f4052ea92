package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/alumoutreach/alumoutreach/internal/analytics"
	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Options are the knobs shared by the scenarios.
type Options struct {
	Events  int
	Writers int
	Batch   int
	// Sync is the embedded server's fsync policy ("1s", "always", ...).
	Sync string
	// Rate and Duration drive the latency scenario.
	Rate     int
	Duration time.Duration
	// Messages, InFlight, Delivered and Tracked drive the message-events
	// scenario.
	Messages  int
	InFlight  int
	Delivered bool
	Tracked   bool
	Out       io.Writer
}

// Result is one scenario's figures.
type Result struct {
	Scenario   string
	Events     int
	Elapsed    time.Duration
	PerSecond  float64
	PeakRSSMiB float64
	P50, P99   time.Duration
	// Unit names what Events counts ("events" when empty).
	Unit string
	// CPUPerItem is the process's CPU time per item, when measured.
	CPUPerItem time.Duration
}

func (r Result) String() string {
	unit := r.Unit
	if unit == "" {
		unit = "events"
	}
	s := fmt.Sprintf("%-9s %s=%d elapsed=%s rate=%.0f/s peakRSS=%.0fMiB",
		r.Scenario, unit, r.Events, r.Elapsed.Round(time.Millisecond), r.PerSecond, r.PeakRSSMiB)
	if r.CPUPerItem > 0 {
		s += fmt.Sprintf(" cpu=%.0fµs/%s", float64(r.CPUPerItem.Nanoseconds())/1e3, strings.TrimSuffix(unit, "s"))
	}
	if r.P99 > 0 {
		s += fmt.Sprintf(" p50=%s p99=%s", r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
	}
	return s
}

func sampleEvent(tenant string) (event.Envelope, error) {
	return event.New(context.Background(), event.ContactCreated, event.SourceContacts, tenant, event.ContactCreatedData{
		ContactID: event.NewID(), Email: "jane.doe@example.edu", Phone: "+15550100200", Source: "import", Version: 1,
	})
}

// Ceiling measures raw JetStream on this machine: async publish of
// pre-encoded events with Nats-Msg-Id while a durable consumer consumes and
// acknowledges them, in the same process, with the same fsync policy.
func Ceiling(ctx context.Context, dir string, o Options) (Result, error) {
	cfg := config.Default()
	cfg.DataDir, cfg.NATS.ListenAddr, cfg.NATS.Sync = dir, "", o.Sync
	b, err := app.OpenBus(ctx, cfg, bus.NewMetrics(nil), quiet())
	if err != nil {
		return Result{}, err
	}
	defer b.Close()
	js := b.JetStream()
	// A pool of encoded events reused under fresh message ids: the ceiling
	// measures the bus, not JSON encoding, and memory stays flat.
	pool := make([][]byte, 1000)
	for i := range pool {
		env, err := sampleEvent("bench")
		if err != nil {
			return Result{}, err
		}
		pool[i], _ = event.Encode(env, 0)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.EventsStream, jetstream.ConsumerConfig{
		Durable: "BENCH_CEILING", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000,
	})
	if err != nil {
		return Result{}, err
	}
	var acked atomic.Int64
	done := make(chan struct{})
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if acked.Add(1) == int64(o.Events) {
			close(done)
		}
	}, jetstream.PullMaxMessages(1000),
		// Consume is the client's fastest path, but under load its pull can
		// stall until the pull expires (see docs/benchmarks.md): a short expiry
		// keeps a stall from passing for a slow machine.
		jetstream.PullExpiry(time.Second))
	if err != nil {
		return Result{}, err
	}
	defer cc.Stop()
	for i := range o.Events {
		m := &nats.Msg{Subject: event.ContactCreated, Data: pool[i%len(pool)],
			Header: nats.Header{jetstream.MsgIDHeader: []string{event.NewID()}}}
		if err := bus.PublishAsyncRetry(ctx, js, m); err != nil {
			return Result{}, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case <-done:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	return finish("ceiling", o.Events, time.Since(start)), nil
}

// pathApp assembles the real service (analytics only) in dir, with a wrapper
// that observes each ANALYTICS_INGEST_CONSUMER handling.
func pathApp(ctx context.Context, dir string, o Options, observe func(event.Envelope)) (*app.App, error) {
	cfg := config.Default()
	cfg.DataDir, cfg.NATS.ListenAddr, cfg.NATS.Sync, cfg.HTTPAddr = dir, "", o.Sync, "127.0.0.1:0"
	cfg.Modules = []string{"analytics"}
	a, err := app.New(ctx, cfg, quiet(), app.WithHandlerWrapper(func(name string, h bus.Handler) bus.Handler {
		if name != analytics.ConsumerName {
			return h
		}
		return func(ctx context.Context, ev event.Envelope) error {
			err := h(ctx, ev)
			if err == nil {
				observe(ev)
			}
			return err
		}
	}))
	if err != nil {
		return nil, err
	}
	if _, err := a.DB().Writer().ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS bench_items (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, email TEXT NOT NULL, created_at BIGINT NOT NULL)`); err != nil {
		return nil, err
	}
	if err := a.Start(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// changes commits n state changes in tx as the modules do: the rows through
// a store.StmtCache (one prepared statement, no per-row cancellation
// watcher), and their events emitted together.
func changes(ctx context.Context, tx *sql.Tx, emit outbox.Emit, n int) ([]event.Envelope, error) {
	st := store.NewStmtCache(tx)
	defer st.Close()
	envs := make([]event.Envelope, 0, n)
	for range n {
		env, err := sampleEvent("bench")
		if err != nil {
			return nil, err
		}
		if _, err := st.ExecContext(ctx, `INSERT INTO bench_items (id, tenant_id, email, created_at) VALUES ($1, $2, $3, $4)`, env.ID, env.TenantID, "jane.doe@example.edu", time.Now().UnixMilli()); err != nil {
			return nil, err
		}
		envs = append(envs, env)
	}
	return envs, emit(envs...)
}

// Pipeline measures our full path: Writers goroutines commit state changes
// with their events, Batch per transaction, through the outbox; the relay
// publishes them; ANALYTICS_INGEST_CONSUMER stores each. Elapsed runs from
// the first commit to the last event stored.
func Pipeline(ctx context.Context, dir string, o Options) (Result, error) {
	var handled atomic.Int64
	done := make(chan struct{})
	a, err := pathApp(ctx, dir, o, func(event.Envelope) {
		if handled.Add(1) == int64(o.Events) {
			close(done)
		}
	})
	if err != nil {
		return Result{}, err
	}
	defer shutdown(a)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.Writers)
	progress := time.NewTicker(500 * time.Millisecond)
	defer progress.Stop()
	for range o.Writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := next.Add(int64(o.Batch)) - int64(o.Batch)
				if first >= int64(o.Events) {
					return
				}
				n := min(int64(o.Batch), int64(o.Events)-first)
				err := a.Outbox().InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
					_, err := changes(ctx, tx, emit, int(n))
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for {
		select {
		case <-done:
			wg.Wait()
			return finish("pipeline", o.Events, time.Since(start)), nil
		case err := <-errs:
			return Result{}, err
		case <-progress.C:
			line := fmt.Sprintf("  ... %d of %d events stored (%.0f/s)", handled.Load(), o.Events,
				float64(handled.Load())/time.Since(start).Seconds())
			if cons, err := a.Bus().JetStream().Consumer(ctx, bus.EventsStream, analytics.ConsumerName); err == nil {
				if ci, err := cons.Info(ctx); err == nil {
					line += fmt.Sprintf("; stream has %d, consumer pending %d, unacked %d, redelivered %d, waiting pulls %d",
						ci.Delivered.Stream+ci.NumPending, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
				}
			}
			fmt.Fprintln(o.Out, line)
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
}

// Latency commits one event per transaction at a steady Rate for Duration
// and measures, per event, the time from its commit to the analytics
// consumer finishing with it (just before the ack).
func Latency(ctx context.Context, dir string, o Options) (Result, error) {
	var commits sync.Map
	var mu sync.Mutex
	var lat []time.Duration
	a, err := pathApp(ctx, dir, o, func(ev event.Envelope) {
		if t, ok := commits.Load(ev.ID); ok {
			d := time.Since(t.(time.Time))
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}
	})
	if err != nil {
		return Result{}, err
	}
	defer shutdown(a)
	total := int(float64(o.Rate) * o.Duration.Seconds())
	interval := time.Second / time.Duration(o.Rate)
	start := time.Now()
	for i := range total {
		// Paced against the schedule, not a ticker: timers here fire at a
		// few milliseconds' granularity, so a 1 ms ticker would run at a
		// quarter of the rate. Events that fall due together are still
		// committed one transaction each.
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return Result{}, ctx.Err()
			}
		}
		err := a.Outbox().InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
			envs, err := changes(ctx, tx, emit, 1)
			if err == nil {
				// Recorded just before the commit, so the consumer can never
				// see the event first; this counts the commit itself (tens of
				// microseconds) into the latency.
				commits.Store(envs[0].ID, time.Now())
			}
			return err
		})
		if err != nil {
			return Result{}, err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	r := finish("latency", total, time.Since(start))
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	if len(lat) > 0 {
		r.P50 = lat[len(lat)/2]
		r.P99 = lat[len(lat)*99/100]
	}
	return r, nil
}

func shutdown(a *app.App) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = a.Shutdown(ctx)
}

func finish(name string, n int, elapsed time.Duration) Result {
	return Result{Scenario: name, Events: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(), PeakRSSMiB: PeakRSSMiB()}
}

// PeakRSSMiB reads the process's peak resident set size (VmHWM).
func PeakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// processCPU is the CPU time, user and system, the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
