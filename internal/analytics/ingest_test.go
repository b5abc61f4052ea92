package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startIngest starts an Ingest on st and stops it when the test ends.
func startIngest(t *testing.T, st Store, opts IngestOptions) *Ingest {
	t.Helper()
	in := NewIngest(st, quietLogger(), opts)
	if err := in.Start(context.Background()); err != nil {
		t.Fatalf("start ingest: %v", err)
	}
	t.Cleanup(in.Stop)
	return in
}

// countingStore records the batches that reach the real store.
type countingStore struct {
	Store
	mu      sync.Mutex
	batches []int
}

func (c *countingStore) Insert(ctx context.Context, events []Event) (int, error) {
	c.mu.Lock()
	c.batches = append(c.batches, len(events))
	c.mu.Unlock()
	return c.Store.Insert(ctx, events)
}

func TestIngestGroupCommitStoresEachIDOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := &countingStore{Store: newStore(t, db)}
		in := startIngest(t, st, IngestOptions{MaxBatch: 64})

		// 150 distinct events; 50 of them are delivered twice, as a
		// redelivery after a lost ack would, some while the first copy is
		// still queued.
		const distinct, dupes = 150, 50
		envs := make([]event.Envelope, 0, distinct+dupes)
		for i := range distinct {
			envs = append(envs, envelope(t, tenantA, "contact.created", base.Add(time.Duration(i)*time.Minute)))
		}
		envs = append(envs, envs[:dupes]...)

		var wg sync.WaitGroup
		var failed atomic.Int32
		start := make(chan struct{})
		for _, env := range envs {
			wg.Go(func() {
				<-start
				if err := in.Handle(context.Background(), env); err != nil {
					failed.Add(1)
					t.Errorf("handle %s: %v", env.ID, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if failed.Load() > 0 {
			t.FailNow()
		}

		if n := rawRows(t, db); n != distinct {
			t.Errorf("raw rows = %d, want %d", n, distinct)
		}
		got := counts(t, st, tenantA, CountQuery{From: base, To: base.Add(24 * time.Hour), Interval: Day})
		if total(got) != distinct {
			t.Errorf("counted %d events, want %d: %v", total(got), distinct, got)
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		for _, n := range st.batches {
			if n > 64 {
				t.Errorf("a batch of %d events exceeds MaxBatch 64", n)
			}
		}
		t.Logf("%d handler calls committed in %d transactions: %v", len(envs), len(st.batches), st.batches)
	})
}

func TestIngestRefusesWhenNotRunning(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	in := NewIngest(newStore(t, db), quietLogger(), IngestOptions{})
	env := envelope(t, tenantA, "contact.created", base)
	if err := in.Handle(context.Background(), env); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("handle before start: err = %v, want ErrNotRunning", err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	if err := in.Handle(context.Background(), env); err != nil {
		t.Fatalf("handle: %v", err)
	}
	in.Stop()
	in.Stop() // idempotent
	if err := in.Handle(context.Background(), env); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("handle after stop: err = %v, want ErrNotRunning", err)
	}
	if n := rawRows(t, db); n != 1 {
		t.Errorf("raw rows = %d, want 1", n)
	}
}

func TestIngestRefusesIncompleteEnvelopes(t *testing.T) {
	t.Parallel()
	in := startIngest(t, newStore(t, storetest.Open(t, store.SQLite)), IngestOptions{})
	good := envelope(t, tenantA, "contact.created", base)
	cases := []struct {
		name   string
		mutate func(*event.Envelope)
	}{
		{"no id", func(e *event.Envelope) { e.ID = "" }},
		{"no tenant", func(e *event.Envelope) { e.TenantID = "" }},
		{"no type", func(e *event.Envelope) { e.Type = "" }},
		{"no timestamp", func(e *event.Envelope) { e.Timestamp = event.Time{} }},
	}
	for _, c := range cases {
		env := good
		c.mutate(&env)
		if err := in.Handle(context.Background(), env); !errors.Is(err, event.ErrInvalid) {
			t.Errorf("%s: err = %v, want event.ErrInvalid (dead-lettered at once)", c.name, err)
		}
	}
}

// gatedStore holds every Insert until the test releases it, and fails the
// batches that contain a poisoned id, as a database refusing one row would.
type gatedStore struct {
	Store
	gate    chan struct{}
	entered chan struct{} // receives once per Insert call, when not nil
	poison  string
}

var errPoison = errors.New("row refused")

func (g *gatedStore) Insert(ctx context.Context, events []Event) (int, error) {
	if g.entered != nil {
		select {
		case g.entered <- struct{}{}:
		default:
		}
	}
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	for _, e := range events {
		if e.ID == g.poison {
			return 0, errPoison
		}
	}
	return g.Store.Insert(ctx, events)
}

// waitQueued waits until n events wait for the writer.
func waitQueued(t *testing.T, in *Ingest, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		queued := in.batcher.Queued()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestIngestIsolatesARefusedEvent(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	gate := make(chan struct{})
	bad := envelope(t, tenantA, "contact.created", base)
	entered := make(chan struct{}, 1)
	st := &gatedStore{Store: newStore(t, db), gate: gate, entered: entered, poison: bad.ID}
	in := startIngest(t, st, IngestOptions{})

	// The first event occupies the writer; the rest queue up behind it and
	// commit as one batch together with the poisoned event.
	envs := []event.Envelope{envelope(t, tenantA, "contact.created", base), bad}
	for range 5 {
		envs = append(envs, envelope(t, tenantA, "contact.created", base))
	}
	errs := make([]error, len(envs))
	var wg sync.WaitGroup
	for i, env := range envs {
		wg.Go(func() { errs[i] = in.Handle(context.Background(), env) })
		if i == 0 {
			<-entered // the writer holds the first event alone
		}
	}
	waitQueued(t, in, len(envs)-1)
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if envs[i].ID == bad.ID {
			if !errors.Is(err, errPoison) {
				t.Errorf("poisoned event: err = %v, want errPoison", err)
			}
		} else if err != nil {
			t.Errorf("event %d failed with its batch: %v", i, err)
		}
	}
	if n := rawRows(t, db); n != len(envs)-1 {
		t.Errorf("raw rows = %d, want %d", n, len(envs)-1)
	}
}

func TestIngestHandleReturnsWhenCallerGivesUp(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	st := &gatedStore{Store: newStore(t, storetest.Open(t, store.SQLite)), gate: gate}
	in := startIngest(t, st, IngestOptions{})
	t.Cleanup(func() { close(gate) }) // runs before Stop: the writer can finish

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := in.Handle(ctx, envelope(t, tenantA, "contact.created", base))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestIngestFailsQueuedEventsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	defer close(gate)
	entered := make(chan struct{}, 1)
	st := &gatedStore{Store: newStore(t, storetest.Open(t, store.SQLite)), gate: gate, entered: entered}
	in := NewIngest(st, quietLogger(), IngestOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	if err := in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	handle := func(env event.Envelope) { errs <- in.Handle(context.Background(), env) }
	go handle(envelope(t, tenantA, "contact.created", base))
	<-entered // the first is being written, the second waits in the queue
	go handle(envelope(t, tenantA, "contact.created", base))
	waitQueued(t, in, 1)
	cancel()
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("handle succeeded after the ingest context ended")
		}
	}
	in.Stop()
}

func TestIngestErasureBlanksOnlyOnRequest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		in := startIngest(t, newStore(t, db), IngestOptions{})
		withData := func(subject, data string) event.Envelope {
			env := envelope(t, tenantA, subject, base)
			env.Data = json.RawMessage(data)
			return env
		}
		for _, env := range []event.Envelope{
			withData("contact.created", `{"contactId":"kept","email":"kept@example.org"}`),
			withData("contact.deleted", `{"contactId":"kept","erased":false,"version":2}`),
			withData("contact.created", `{"contactId":"gone","email":"gone@example.org"}`),
			withData("contact.deleted", `{"contactId":"gone","erased":true,"version":2}`),
		} {
			if err := in.Handle(context.Background(), env); err != nil {
				t.Fatalf("handle %s: %v", env.Type, err)
			}
		}
		var kept, gone int
		err := db.Reader().QueryRow(`SELECT
			(SELECT count(*) FROM analytics_events WHERE data ->> 'email' = 'kept@example.org'),
			(SELECT count(*) FROM analytics_events WHERE data ->> 'email' = 'gone@example.org')`).Scan(&kept, &gone)
		if err != nil {
			t.Fatal(err)
		}
		if kept != 1 || gone != 0 {
			t.Errorf("events still naming the deleted contact: %d, the erased one: %d; want 1 and 0", kept, gone)
		}
		if n := rawRows(t, db); n != 4 {
			t.Errorf("stored events = %d, want 4 (erasure keeps them counted)", n)
		}
	})
}
