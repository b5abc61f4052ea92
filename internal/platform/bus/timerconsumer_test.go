package bus_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
)

// timerDeadline bounds every wait for a timer: generous, since a timer
// scheduled 300 ms ahead normally fires within a second.
const timerDeadline = 10 * time.Second

// fastTimers returns timer consumer options with millisecond retry delays.
func fastTimers(name, prefix string, h bus.TimerHandler) bus.TimerConsumerOptions {
	return bus.TimerConsumerOptions{
		Name: name, KeyPrefix: prefix, AckWait: 2 * time.Second,
		Backoff: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond}, Handler: h,
	}
}

func startTimers(t *testing.T, b *bus.Bus, o bus.TimerConsumerOptions) *bus.TimerConsumer {
	t.Helper()
	c, err := b.StartTimerConsumer(context.Background(), o)
	if err != nil {
		t.Fatalf("start timer consumer %s: %v", o.Name, err)
	}
	t.Cleanup(c.Stop)
	return c
}

func scheduleIn(t *testing.T, b *bus.Bus, key string, in time.Duration, data string) time.Time {
	t.Helper()
	at := time.Now().Add(in)
	if err := b.ScheduleTimer(context.Background(), key, at, []byte(data)); err != nil {
		t.Fatalf("schedule %s: %v", key, err)
	}
	return at
}

// waitFired waits until the timer has fired, whoever consumes it.
func waitFired(t *testing.T, b *bus.Bus, key string) {
	t.Helper()
	ctx := context.Background()
	s, err := b.JetStream().Stream(ctx, bus.TimersStream)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, timerDeadline, key+" fired", func() bool {
		_, err := s.GetLastMsgForSubject(ctx, bus.TimerFiredPrefix+key)
		return err == nil
	})
}

// waitTimersSettled waits until the durable has nothing pending and nothing
// awaiting an ack: from then on the server delivers nothing more, so counts
// taken afterwards are final without sleeping.
func waitTimersSettled(t *testing.T, b *bus.Bus, name string) {
	t.Helper()
	ctx := context.Background()
	cons, err := b.JetStream().Consumer(ctx, bus.TimersStream, name)
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, timerDeadline, name+" settled", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
}

// timerLog records the firings a handler saw.
type timerLog struct {
	mu    sync.Mutex
	calls map[string]int
}

func (l *timerLog) add(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = map[string]int{}
	}
	l.calls[key]++
}

func (l *timerLog) snapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.calls)
}

func TestTimerConsumerHandlesAFiredTimerOnce(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	type firing struct {
		key, data    string
		at           time.Time
		attempt, max int
		progressErr  error
	}
	fired := make(chan firing, 10)
	startTimers(t, b, bus.TimerConsumerOptions{Name: "ONCE_TIMER_CONSUMER", KeyPrefix: "campaign.start.",
		Handler: func(ctx context.Context, key string, data []byte) error {
			f := firing{key: key, data: string(data), at: time.Now(), progressErr: bus.Progress(ctx)}
			f.attempt, f.max = bus.Attempt(ctx)
			fired <- f
			return nil
		}})
	at := scheduleIn(t, b, "campaign.start.c1", 300*time.Millisecond, "payload")
	var f firing
	select {
	case f = <-fired:
	case <-time.After(timerDeadline):
		t.Fatal("timer never reached the handler")
	}
	if f.key != "campaign.start.c1" || f.data != "payload" {
		t.Fatalf("handler got key %q data %q", f.key, f.data)
	}
	if f.at.Before(at) {
		t.Fatalf("fired %s early", at.Sub(f.at))
	}
	if f.attempt != 1 || f.max != 5 {
		t.Fatalf("Attempt = %d of %d, want 1 of 5 (the default MaxDeliver)", f.attempt, f.max)
	}
	if f.progressErr != nil {
		t.Fatalf("Progress in a timer handler: %v", f.progressErr)
	}
	waitTimersSettled(t, b, "ONCE_TIMER_CONSUMER")
	if len(fired) != 0 {
		t.Fatalf("timer handled again: %+v", <-fired)
	}
	m := b.Metrics()
	if got := counter(t, m.Consumed, "timer.fired", "ONCE_TIMER_CONSUMER"); got != 1 {
		t.Fatalf("events_consumed_total = %v, want 1", got)
	}
	if got := counter(t, m.Acked, "timer.fired", "ONCE_TIMER_CONSUMER"); got != 1 {
		t.Fatalf("events_acked_total = %v, want 1", got)
	}
}

func TestTimerConsumersSharingANameHandleEachTimerOnce(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	var log timerLog
	for range 2 {
		startTimers(t, b, fastTimers("SHARED_TIMER_CONSUMER", "", func(ctx context.Context, key string, data []byte) error {
			log.add(key)
			return nil
		}))
	}
	keys := []string{"test.shared.a", "test.shared.b", "test.shared.c", "test.shared.d", "test.shared.e"}
	for _, k := range keys {
		scheduleIn(t, b, k, 300*time.Millisecond, k)
	}
	bustest.Eventually(t, timerDeadline, "every timer handled", func() bool { return len(log.snapshot()) == len(keys) })
	waitTimersSettled(t, b, "SHARED_TIMER_CONSUMER")
	for k, n := range log.snapshot() {
		if n != 1 {
			t.Fatalf("timer %s handled %d times, want once", k, n)
		}
	}
}

func TestTimerConsumerRetries(t *testing.T) {
	t.Parallel()
	transient := errors.New("database briefly unavailable")
	tests := []struct {
		name string
		// fail returns the handler's error on delivery n (1 for the first).
		fail         func(n int) error
		maxDeliver   int
		wantAttempts []int
		wantAcked    float64
		wantNacked   float64
	}{
		{
			name: "failing twice then succeeding is retried then acked",
			fail: func(n int) error {
				if n <= 2 {
					return transient
				}
				return nil
			},
			wantAttempts: []int{1, 2, 3}, wantAcked: 1, wantNacked: 2,
		},
		{
			name:         "a permanent error terminates at once",
			fail:         func(int) error { return bus.Permanent(errors.New("campaign no longer exists")) },
			wantAttempts: []int{1},
		},
		{
			name:         "failing on every delivery terminates after MaxDeliver",
			fail:         func(int) error { return transient },
			maxDeliver:   3,
			wantAttempts: []int{1, 2, 3}, wantNacked: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := bustest.Open(t, "")
			var mu sync.Mutex
			var attempts []int
			o := fastTimers("RETRY_TIMER_CONSUMER", "", func(ctx context.Context, key string, data []byte) error {
				n, _ := bus.Attempt(ctx)
				mu.Lock()
				attempts = append(attempts, n)
				mu.Unlock()
				return tc.fail(n)
			})
			o.MaxDeliver = tc.maxDeliver
			startTimers(t, b, o)
			scheduleIn(t, b, "test.retry.a", 300*time.Millisecond, "")
			got := func() []int {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(attempts)
			}
			bustest.Eventually(t, timerDeadline, "every expected attempt", func() bool { return len(got()) >= len(tc.wantAttempts) })
			waitTimersSettled(t, b, "RETRY_TIMER_CONSUMER")
			if a := got(); !slices.Equal(a, tc.wantAttempts) {
				t.Fatalf("attempts %v, want %v", a, tc.wantAttempts)
			}
			m := b.Metrics()
			if got := counter(t, m.Acked, "timer.fired", "RETRY_TIMER_CONSUMER"); got != tc.wantAcked {
				t.Fatalf("events_acked_total = %v, want %v", got, tc.wantAcked)
			}
			if got := counter(t, m.Nacked, "timer.fired", "RETRY_TIMER_CONSUMER"); got != tc.wantNacked {
				t.Fatalf("events_nacked_total = %v, want %v", got, tc.wantNacked)
			}
			if got := counter(t, m.DLQ, "timer.fired", "RETRY_TIMER_CONSUMER"); got != 0 {
				t.Fatalf("events_dlq_total = %v; timers have no DLQ", got)
			}
		})
	}
}

func TestTimerFiredWhileNoConsumerRunsIsHandledOnStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// startFirst runs (and stops) the consumer before the timer fires,
		// so the durable exists; restart closes the bus in between.
		startFirst, restart bool
	}{
		{name: "durable created after the timer fired"},
		{name: "durable stopped when the timer fired", startFirst: true},
		{name: "durable stopped and bus restarted after the timer fired", startFirst: true, restart: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			first, err := bus.Open(context.Background(), bus.Config{DataDir: dir}, bus.NewMetrics(nil), bustest.Logger(t))
			if err != nil {
				t.Fatal(err)
			}
			var closeOnce sync.Once
			closeFirst := func() { closeOnce.Do(first.Close) }
			t.Cleanup(closeFirst)
			handled := make(chan string, 10)
			o := fastTimers("LATE_TIMER_CONSUMER", "", func(ctx context.Context, key string, data []byte) error {
				handled <- key + "=" + string(data)
				return nil
			})
			if tc.startFirst {
				c, err := first.StartTimerConsumer(context.Background(), o)
				if err != nil {
					t.Fatal(err)
				}
				c.Stop()
			}
			scheduleIn(t, first, "test.late.a", 300*time.Millisecond, "a")
			waitFired(t, first, "test.late.a")
			b := first
			if tc.restart {
				closeFirst()
				b = bustest.Open(t, dir)
			}
			startTimers(t, b, o)
			select {
			case got := <-handled:
				if got != "test.late.a=a" {
					t.Fatalf("handled %s", got)
				}
			case <-time.After(timerDeadline):
				t.Fatal("timer fired while no consumer ran was never handled")
			}
		})
	}
}

func TestTimerConsumerStopWaitsAndKeepsUnackedTimers(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	started := make(chan struct{})
	var startOnce sync.Once
	var finished atomic.Bool
	o := fastTimers("STOP_TIMER_CONSUMER", "", func(ctx context.Context, key string, data []byte) error {
		startOnce.Do(func() { close(started) })
		time.Sleep(200 * time.Millisecond)
		finished.Store(true)
		return errors.New("transient") // left for a retry
	})
	// A retry can still reach this consumer while Stop drains its open pull
	// request; a second's backoff leaves it at most one.
	o.Backoff = []time.Duration{time.Second}
	c, err := b.StartTimerConsumer(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	scheduleIn(t, b, "test.stop.a", 300*time.Millisecond, "a")
	select {
	case <-started:
	case <-time.After(timerDeadline):
		t.Fatal("timer never reached the handler")
	}
	c.Stop()
	if !finished.Load() {
		t.Fatal("Stop returned before the running handler finished")
	}

	retried := make(chan int, 10)
	o.Handler = func(ctx context.Context, key string, data []byte) error {
		n, _ := bus.Attempt(ctx)
		retried <- n
		return nil
	}
	startTimers(t, b, o)
	select {
	case n := <-retried:
		if n < 2 {
			t.Fatalf("after restart the timer came as attempt %d; the failed first delivery was not counted", n)
		}
	case <-time.After(timerDeadline):
		t.Fatal("the un-acked timer was lost across Stop")
	}
}

func TestTimerConsumerKeyPrefixFilters(t *testing.T) {
	t.Parallel()
	keys := []string{"campaign.start.c1", "campaign.started.c2", "campaign.c3", "workflow.delay.w1"}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"campaign.start.", []string{"campaign.start.c1"}},
		{"campaign.", []string{"campaign.c3", "campaign.start.c1", "campaign.started.c2"}},
		{"", []string{"campaign.c3", "campaign.start.c1", "campaign.started.c2", "workflow.delay.w1"}},
	}
	for _, tc := range tests {
		t.Run("prefix "+tc.prefix, func(t *testing.T) {
			t.Parallel()
			b := bustest.Open(t, "")
			var log timerLog
			startTimers(t, b, fastTimers("PREFIX_TIMER_CONSUMER", tc.prefix, func(ctx context.Context, key string, data []byte) error {
				log.add(key)
				return nil
			}))
			for _, k := range keys {
				scheduleIn(t, b, k, 300*time.Millisecond, "")
			}
			for _, k := range keys {
				waitFired(t, b, k)
			}
			bustest.Eventually(t, timerDeadline, "the matching timers handled", func() bool { return len(log.snapshot()) >= len(tc.want) })
			waitTimersSettled(t, b, "PREFIX_TIMER_CONSUMER")
			if got := slices.Sorted(maps.Keys(log.snapshot())); !slices.Equal(got, tc.want) {
				t.Fatalf("handled %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStartTimerConsumerRefusesBadOptions(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	ok := func(context.Context, string, []byte) error { return nil }
	tests := []struct {
		name string
		o    bus.TimerConsumerOptions
	}{
		{"name with a dot", bus.TimerConsumerOptions{Name: "A.B", Handler: ok}},
		{"no handler", bus.TimerConsumerOptions{Name: "NO_HANDLER"}},
		{"prefix without a trailing dot", bus.TimerConsumerOptions{Name: "P", KeyPrefix: "campaign.start", Handler: ok}},
		{"prefix with an empty token", bus.TimerConsumerOptions{Name: "P", KeyPrefix: "campaign..", Handler: ok}},
		{"prefix with a wildcard", bus.TimerConsumerOptions{Name: "P", KeyPrefix: "campaign.*.", Handler: ok}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := b.StartTimerConsumer(context.Background(), tc.o); err == nil {
				c.Stop()
				t.Fatalf("started with %+v", tc.o)
			}
		})
	}
}
