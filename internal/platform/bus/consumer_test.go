package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
)

// fast returns consumer options with millisecond delays, so retry paths run quickly.
func fast(name string, h bus.Handler) bus.ConsumerOptions {
	return bus.ConsumerOptions{
		Name: name, Filters: []string{"contact.>"}, Concurrency: 8, MaxDeliver: 3,
		AckWait: 2 * time.Second, Backoff: []time.Duration{50 * time.Millisecond, 150 * time.Millisecond},
		Handler: h,
	}
}

func start(t *testing.T, b *bus.Bus, o bus.ConsumerOptions) *bus.Consumer {
	t.Helper()
	c, err := b.StartConsumer(context.Background(), o)
	if err != nil {
		t.Fatalf("start consumer %s: %v", o.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

func publish(t *testing.T, b *bus.Bus, envs ...event.Envelope) {
	t.Helper()
	for _, e := range envs {
		if err := b.Publish(context.Background(), e); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

func TestPublishConsumeAck(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	var mu sync.Mutex
	seen := map[string]event.Envelope{}
	start(t, b, fast("TEST_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		seen[ev.ID] = ev
		return nil
	}))
	want := map[string]bool{}
	for range 50 {
		e := bustest.ContactCreated(t, "tenant-a")
		want[e.ID] = true
		publish(t, b, e)
	}
	bustest.Eventually(t, 10*time.Second, "all events handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == len(want)
	})
	for id := range want {
		if seen[id].TenantID != "tenant-a" || seen[id].Type != event.ContactCreated {
			t.Fatalf("event %s arrived as %+v", id, seen[id])
		}
	}
	info, err := b.JetStream().Consumer(context.Background(), bus.EventsStream, "TEST_CONSUMER")
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 5*time.Second, "no ack pending", func() bool {
		ci, err := info.Info(context.Background())
		return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0
	})
}

func TestTwoRunnersShareOneDurable(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	var mu sync.Mutex
	count := map[string]int{}
	perRunner := [2]int{}
	for i := range 2 {
		start(t, b, fast("SHARED_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
			time.Sleep(time.Millisecond) // let the other runner take some
			mu.Lock()
			defer mu.Unlock()
			count[ev.ID]++
			perRunner[i]++
			return nil
		}))
	}
	const n = 400
	for range n {
		publish(t, b, bustest.ContactCreated(t, "t"))
	}
	bustest.Eventually(t, 20*time.Second, "all events handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(count) == n
	})
	time.Sleep(200 * time.Millisecond) // a duplicate would show up now
	mu.Lock()
	defer mu.Unlock()
	for id, c := range count {
		if c != 1 {
			t.Fatalf("event %s handled %d times", id, c)
		}
	}
	if perRunner[0] == 0 || perRunner[1] == 0 {
		t.Fatalf("work not shared: %v", perRunner)
	}
}

func TestRetryAfterConfiguredDelaysThenAck(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	var mu sync.Mutex
	var attempts []time.Time
	done := make(chan struct{})
	start(t, b, fast("RETRY_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if len(attempts) < 3 {
			return errors.New("database briefly unavailable")
		}
		close(done)
		return nil
	}))
	publish(t, b, bustest.ContactCreated(t, "t"))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("third attempt never came")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, minGap := range []time.Duration{50 * time.Millisecond, 150 * time.Millisecond} {
		if gap := attempts[i+1].Sub(attempts[i]); gap < minGap {
			t.Fatalf("attempt %d came %s after attempt %d; configured backoff is %s", i+2, gap, i+1, minGap)
		}
	}
	if n := dlqCount(t, b); n != 0 {
		t.Fatalf("DLQ has %d entries; want none", n)
	}
	if got := counter(t, b.Metrics().Acked, event.ContactCreated, "RETRY_CONSUMER"); got != 1 {
		t.Fatalf("events_acked_total = %v, want 1", got)
	}
	if got := counter(t, b.Metrics().Nacked, event.ContactCreated, "RETRY_CONSUMER"); got != 2 {
		t.Fatalf("events_nacked_total = %v, want 2", got)
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		err          error
		wantAttempts int
		wantCode     string
	}{
		{"always failing lands after the last attempt", errors.New("smtp relay refused"), 3, "PROCESSING_ERROR"},
		{"permanent error lands at once", bus.Permanent(errors.New("segment rule references a deleted field")), 1, "PERMANENT_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := bustest.Open(t, "")
			var calls atomic.Int32
			start(t, b, fast("FAILING_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
				calls.Add(1)
				return tc.err
			}))
			ev := bustest.ContactCreated(t, "tenant-a")
			publish(t, b, ev)
			d := waitDeadLetter(t, b)
			if int(calls.Load()) != tc.wantAttempts {
				t.Fatalf("handler called %d times, want %d", calls.Load(), tc.wantAttempts)
			}
			assertSpecFormat(t, b, d, ev, tc.wantCode, tc.wantAttempts, "FAILING_CONSUMER")
			// The entry is in the stream before the stream's acknowledgement
			// reaches the writer, which counts it then.
			bustest.Eventually(t, 5*time.Second, "events_dlq_total 1", func() bool {
				return counter(t, b.Metrics().DLQ, event.ContactCreated, "FAILING_CONSUMER") == 1
			})
		})
	}
}

func TestUndecodableEventIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	var calls atomic.Int32
	start(t, b, fast("STRICT_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		calls.Add(1)
		return nil
	}))
	if err := b.PublishBatch(context.Background(), []bus.Message{{ID: "x1", Subject: "contact.created", Data: []byte(`{"version":"9.0"}`)}}); err != nil {
		t.Fatal(err)
	}
	d := waitDeadLetter(t, b)
	if d.Error.Code != "INVALID_EVENT" || d.Error.Attempts != 1 || calls.Load() != 0 {
		t.Fatalf("got %+v after %d handler calls", d.Error, calls.Load())
	}
}

func TestHandlerHangingOnLastAttemptReachesDLQThroughAdvisory(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	w, err := b.StartDLQWorker(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var calls atomic.Int32
	o := fast("HANGING_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		if calls.Add(1) < 3 {
			return errors.New("flaky")
		}
		<-release // hangs past AckWait on the last attempt, as a stuck handler would
		return nil
	})
	o.AckWait = 300 * time.Millisecond
	c, err := b.StartConsumer(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = c.Stop(ctx)
	})
	ev := bustest.ContactCreated(t, "tenant-a")
	publish(t, b, ev)
	d := waitDeadLetter(t, b)
	assertSpecFormat(t, b, d, ev, "MAX_DELIVERIES_EXCEEDED", 3, "HANGING_CONSUMER")
}

func TestReplayRedeliversToTheFailedConsumerOnly(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	var failing atomic.Bool
	failing.Store(true)
	var aCalls, bCalls atomic.Int32
	start(t, b, fast("A_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		aCalls.Add(1)
		if failing.Load() {
			return bus.Permanent(errors.New("bad state"))
		}
		return nil
	}))
	start(t, b, fast("B_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		bCalls.Add(1)
		return nil
	}))
	publish(t, b, bustest.ContactCreated(t, "t"))
	d := waitDeadLetter(t, b)
	bustest.Eventually(t, 5*time.Second, "B handled once", func() bool { return bCalls.Load() == 1 })

	failing.Store(false)
	if _, err := b.ReplayDLQ(context.Background(), d.Seq); err != nil {
		t.Fatalf("replay: %v", err)
	}
	bustest.Eventually(t, 5*time.Second, "A handled the replay", func() bool { return aCalls.Load() == 2 })
	time.Sleep(200 * time.Millisecond)
	if bCalls.Load() != 1 {
		t.Fatalf("B handled the event %d times; replay must reach A only", bCalls.Load())
	}
	if n := dlqCount(t, b); n != 0 {
		t.Fatalf("replayed entry still in DLQ (%d entries)", n)
	}
	if _, err := b.GetDLQ(context.Background(), d.Seq); !errors.Is(err, bus.ErrDeadLetterNotFound) {
		t.Fatalf("GetDLQ after replay: %v", err)
	}
}

func TestDLQListFilterAndPurge(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	start(t, b, fast("P_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		return bus.Permanent(errors.New("no"))
	}))
	for _, tenant := range []string{"t1", "t1", "t2"} {
		publish(t, b, bustest.ContactCreated(t, tenant))
	}
	bustest.Eventually(t, 5*time.Second, "three dead letters", func() bool { return dlqCount(t, b) == 3 })
	page, next, err := b.ListDLQ(context.Background(), bus.DLQFilter{TenantID: "t1", Limit: 1})
	if err != nil || len(page) != 1 || next == 0 {
		t.Fatalf("first page: %v %d %v", len(page), next, err)
	}
	page2, next2, err := b.ListDLQ(context.Background(), bus.DLQFilter{TenantID: "t1", Limit: 1, After: next})
	if err != nil || len(page2) != 1 || page2[0].Seq == page[0].Seq {
		t.Fatalf("second page: %+v %v", page2, err)
	}
	if next2 != 0 {
		if rest, _, _ := b.ListDLQ(context.Background(), bus.DLQFilter{TenantID: "t1", After: next2}); len(rest) != 0 {
			t.Fatalf("t1 has more than two entries: %+v", rest)
		}
	}
	if other, _, _ := b.ListDLQ(context.Background(), bus.DLQFilter{Consumer: "NOBODY"}); len(other) != 0 {
		t.Fatalf("consumer filter ignored: %d entries", len(other))
	}
	if err := b.PurgeDLQ(context.Background(), page[0].Seq); err != nil {
		t.Fatal(err)
	}
	if n := dlqCount(t, b); n != 2 {
		t.Fatalf("after purge %d entries, want 2", n)
	}
	if err := b.PurgeDLQ(context.Background(), page[0].Seq); !errors.Is(err, bus.ErrDeadLetterNotFound) {
		t.Fatalf("purging twice: %v", err)
	}
}

func TestPublishRefusesOversizedEvent(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	big := make([]byte, event.DefaultMaxSize)
	for i := range big {
		big[i] = 'x'
	}
	env, err := event.New(context.Background(), event.ContactCreated, event.SourceContacts, "t",
		event.ContactCreatedData{ContactID: "c1", Source: string(big)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), env); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("publish oversized: %v, want ErrTooLarge", err)
	}
}

func waitDeadLetter(t *testing.T, b *bus.Bus) bus.DeadLetter {
	t.Helper()
	var d []bus.DeadLetter
	bustest.Eventually(t, 10*time.Second, "a dead letter", func() bool {
		var err error
		d, _, err = b.ListDLQ(context.Background(), bus.DLQFilter{})
		return err == nil && len(d) > 0
	})
	return d[0]
}

func dlqCount(t *testing.T, b *bus.Bus) int {
	t.Helper()
	n, err := b.EachDLQ(context.Background(), bus.DLQFilter{}, func(bus.DeadLetter) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// assertSpecFormat checks the stored DLQ message against the spec's error
// event: {originalEvent, error{message, code, attempts, lastAttempt}} on
// dlq.{original subject}, plus the consumer.
func assertSpecFormat(t *testing.T, b *bus.Bus, d bus.DeadLetter, orig event.Envelope, code string, attempts int, consumer string) {
	t.Helper()
	stream, err := b.JetStream().Stream(context.Background(), bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetMsg(context.Background(), d.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "dlq."+orig.Type {
		t.Fatalf("DLQ subject %q, want dlq.%s", raw.Subject, orig.Type)
	}
	if raw.Header.Get(bus.HeaderConsumer) != consumer {
		t.Fatalf("consumer header %q", raw.Header.Get(bus.HeaderConsumer))
	}
	var doc struct {
		OriginalEvent event.Envelope `json:"originalEvent"`
		Error         struct {
			Message     string `json:"message"`
			Code        string `json:"code"`
			Attempts    int    `json:"attempts"`
			LastAttempt string `json:"lastAttempt"`
		} `json:"error"`
		Consumer string `json:"consumer"`
	}
	if err := json.Unmarshal(raw.Data, &doc); err != nil {
		t.Fatalf("DLQ entry is not the spec's JSON: %v", err)
	}
	if doc.OriginalEvent.ID != orig.ID || doc.OriginalEvent.TenantID != orig.TenantID {
		t.Fatalf("originalEvent %+v, want %s", doc.OriginalEvent, orig.ID)
	}
	if doc.Error.Code != code || doc.Error.Attempts != attempts || doc.Error.Message == "" || doc.Consumer != consumer {
		t.Fatalf("error %+v consumer %q; want code %s attempts %d consumer %s", doc.Error, doc.Consumer, code, attempts, consumer)
	}
	if _, err := time.Parse(time.RFC3339, doc.Error.LastAttempt); err != nil {
		t.Fatalf("lastAttempt %q: %v", doc.Error.LastAttempt, err)
	}
}

func TestLongHandlerKeepsItsEventWithProgress(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	var calls atomic.Int32
	done := make(chan struct{})
	o := fast("SLOW_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		calls.Add(1)
		// Work for three AckWaits, reporting progress: without it the server
		// would redeliver the event to another worker while this one runs.
		for range 6 {
			time.Sleep(150 * time.Millisecond)
			if err := bus.Progress(ctx); err != nil {
				return err
			}
		}
		close(done)
		return nil
	})
	o.AckWait = 300 * time.Millisecond
	start(t, b, o)
	publish(t, b, bustest.ContactCreated(t, "t"))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("slow handler never finished")
	}
	time.Sleep(400 * time.Millisecond)
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times; Progress must keep the event from being redelivered", calls.Load())
	}
	if err := bus.Progress(context.Background()); err == nil {
		t.Fatal("Progress outside a handler must fail")
	}
}

func TestStopWaitsForHandlersInFlight(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	started := make(chan struct{})
	var finished atomic.Bool
	c, err := b.StartConsumer(context.Background(), fast("DRAIN_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		close(started)
		time.Sleep(300 * time.Millisecond)
		finished.Store(true)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, bustest.ContactCreated(t, "t"))
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Fatal("Stop returned before the handler in flight finished")
	}
	cons, _ := b.JetStream().Consumer(ctx, bus.EventsStream, "DRAIN_CONSUMER")
	bustest.Eventually(t, 5*time.Second, "the drained event acked", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0
	})
}

func TestConcurrencyBoundsHandlersInFlight(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	var now, peak atomic.Int32
	var done atomic.Int32
	o := fast("BOUNDED_CONSUMER", func(ctx context.Context, ev event.Envelope) error {
		n := now.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		now.Add(-1)
		done.Add(1)
		return nil
	})
	o.Concurrency = 3
	start(t, b, o)
	for range 30 {
		publish(t, b, bustest.ContactCreated(t, "t"))
	}
	bustest.Eventually(t, 10*time.Second, "all handled", func() bool { return done.Load() == 30 })
	if p := peak.Load(); p != 3 {
		t.Fatalf("at most %d handlers ran at once; want exactly the configured 3", p)
	}
}

func TestEventsPublishedWhileHandlingCarryCorrelationAndCausation(t *testing.T) {
	t.Parallel()
	b := bustest.Open(t, "")
	caused := make(chan event.Envelope, 1)
	start(t, b, bus.ConsumerOptions{Name: "CAUSE_CONSUMER", Filters: []string{event.ContactCreated},
		Handler: func(ctx context.Context, ev event.Envelope) error {
			next, err := event.New(ctx, event.ContactTagged, event.SourceContacts, ev.TenantID,
				event.ContactTagData{ContactID: "c1", Tag: "welcomed", Version: 2})
			if err != nil {
				return bus.Permanent(err)
			}
			caused <- next
			return nil
		}})
	origin, err := event.New(event.WithCorrelationID(context.Background(), "req-42"), event.ContactCreated,
		event.SourceContacts, "t", event.ContactCreatedData{ContactID: "c1", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, origin)
	select {
	case next := <-caused:
		if next.CorrelationID != "req-42" || next.CausationID != origin.ID {
			t.Fatalf("correlation %q causation %q; want req-42 and %s", next.CorrelationID, next.CausationID, origin.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler never ran")
	}
}
