package outbox_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// openDB opens url with the platform and outbox tables and a table the
// tests change together with their events.
func openDB(t testing.TB, url string) *store.DB {
	t.Helper()
	db := storetest.OpenURL(t, url)
	ctx := context.Background()
	if err := db.Migrate(ctx, "outbox", outbox.Migrations()); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS things (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS applied (event_id TEXT NOT NULL, consumer TEXT NOT NULL)`,
	} {
		if _, err := db.Writer().ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// createThing is a module's state change: a row and its event, one transaction.
func createThing(ctx context.Context, ob *outbox.Outbox, tenant string) (event.Envelope, error) {
	id := event.NewID()
	env, err := event.New(ctx, event.ContactCreated, event.SourceContacts, tenant, event.ContactCreatedData{ContactID: id, Version: 1})
	if err != nil {
		return env, err
	}
	return env, ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, tenant_id) VALUES ($1, $2)`, id, tenant); err != nil {
			return err
		}
		return emit(env)
	})
}

func startRelay(t testing.TB, ob *outbox.Outbox, pub outbox.Publisher, opts outbox.RelayOptions) *outbox.Relay {
	t.Helper()
	r := outbox.NewRelay(ob, pub, opts, bustest.Logger(t), nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
	})
	return r
}

// idempotentConsumer records each event it applies, guarded by
// store.MarkProcessed in the same transaction, and counts handler calls.
func idempotentConsumer(t testing.TB, b *bus.Bus, db *store.DB, name string) *int64 {
	t.Helper()
	var calls int64
	var mu sync.Mutex
	c, err := b.StartConsumer(context.Background(), bus.ConsumerOptions{
		Name: name, Concurrency: 16, AckWait: 5 * time.Second, Backoff: []time.Duration{20 * time.Millisecond},
		Handler: func(ctx context.Context, ev event.Envelope) error {
			mu.Lock()
			calls++
			mu.Unlock()
			return db.InTx(ctx, func(tx *sql.Tx) error {
				first, err := store.MarkProcessed(ctx, tx, name, ev.ID)
				if err != nil || !first {
					return err
				}
				_, err = tx.ExecContext(ctx, `INSERT INTO applied (event_id, consumer) VALUES ($1, $2)`, ev.ID, name)
				return err
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return &calls
}

// appliedOnce waits until every id was applied and checks none twice.
func appliedOnce(t testing.TB, db *store.DB, ids []string) {
	t.Helper()
	bustest.Eventually(t, 30*time.Second, fmt.Sprintf("%d events applied", len(ids)), func() bool {
		var n int
		_ = db.Reader().QueryRow(`SELECT count(DISTINCT event_id) FROM applied`).Scan(&n)
		return n == len(ids)
	})
	var dup int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM (SELECT event_id FROM applied GROUP BY event_id HAVING count(*) > 1) d`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup != 0 {
		t.Fatalf("%d events applied more than once", dup)
	}
	for _, id := range ids {
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM applied WHERE event_id = $1`, id).Scan(&n); err != nil || n != 1 {
			t.Fatalf("event %s applied %d times (%v)", id, n, err)
		}
	}
}

// streamIDs returns the Nats-Msg-Id of every message in ALUM_EVENTS, in order.
func streamIDs(t testing.TB, b *bus.Bus) []string {
	t.Helper()
	ctx := context.Background()
	cons, err := b.JetStream().OrderedConsumer(ctx, bus.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := b.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range si.State.Msgs {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
	}
	return ids
}

func TestCommitPublishesInOrderWithEventIDAsMsgID(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db0 *store.DB) {
		db := openDB(t, db0.URL())
		b := bustest.Open(t, "")
		ob := outbox.New(db, 0)
		// No safety polling within the test's time: only the commit's wake-up can publish.
		relay := startRelay(t, ob, b, outbox.RelayOptions{BatchSize: 7, SafetyPoll: time.Hour})
		ctx := context.Background()
		var want []string
		for range 40 {
			env, err := createThing(ctx, ob, "t1")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, env.ID)
		}
		bustest.Eventually(t, 10*time.Second, "40 events in the stream", func() bool {
			s, _ := b.JetStream().Stream(ctx, bus.EventsStream)
			si, err := s.Info(ctx)
			return err == nil && si.State.Msgs == 40
		})
		got := streamIDs(t, b)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("stream order %v\nwant %v", got, want)
		}
		bustest.Eventually(t, 5*time.Second, "rows marked published", func() bool {
			n, err := relay.Pending(ctx)
			return err == nil && n == 0
		})
	})
}

func TestRolledBackChangePublishesNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db0 *store.DB) {
		db := openDB(t, db0.URL())
		ob := outbox.New(db, 0)
		ctx := context.Background()
		boom := errors.New("validation failed after the event was emitted")
		err := ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
			env, _ := event.New(ctx, event.ContactCreated, event.SourceContacts, "t", event.ContactCreatedData{ContactID: "c"})
			if err := emit(env); err != nil {
				return err
			}
			_, _ = tx.ExecContext(ctx, `INSERT INTO things (id, tenant_id) VALUES ('x', 't')`)
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx: %v", err)
		}
		var n int
		if err := db.Reader().QueryRow(`SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM things)`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d rows left behind (%v)", n, err)
		}
	})
}

func TestOversizedEventRollsBackTheChange(t *testing.T) {
	t.Parallel()
	db := openDB(t, storetest.URL(t, store.SQLite))
	ob := outbox.New(db, 512)
	ctx := context.Background()
	err := ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, tenant_id) VALUES ('x', 't')`); err != nil {
			return err
		}
		env, _ := event.New(ctx, event.ContactCreated, event.SourceContacts, "t",
			event.ContactCreatedData{ContactID: "c", Source: strings.Repeat("x", 600)})
		return emit(env)
	})
	if !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("InTx: %v, want ErrTooLarge", err)
	}
	var n int
	_ = db.Reader().QueryRow(`SELECT count(*) FROM things`).Scan(&n)
	if n != 0 {
		t.Fatal("the change committed without its event")
	}
}

// natsOnPort runs a NATS server with JetStream on a loopback TCP port, so
// the test can stop it and start it again on the same port and store.
func natsOnPort(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	addr := "127.0.0.1:0"
	if port > 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	srv, err := bus.StartEmbedded(bus.EmbeddedOptions{StoreDir: dir, ListenAddr: addr, SyncInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func portOf(t testing.TB, srv *server.Server) int {
	t.Helper()
	u, err := url.Parse(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	var p int
	fmt.Sscan(u.Port(), &p)
	return p
}

func TestNothingLostWhenNATSGoesAwayAndComesBack(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db0 *store.DB) {
		db := openDB(t, db0.URL())
		dir := t.TempDir()
		srv := natsOnPort(t, dir, 0)
		port := portOf(t, srv)
		t.Cleanup(func() { srv.Shutdown() })
		b, err := bus.Open(context.Background(), bus.Config{URL: srv.ClientURL()}, bus.NewMetrics(nil), bustest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		ob := outbox.New(db, 0)
		relay := startRelay(t, ob, b, outbox.RelayOptions{BatchSize: 50, SafetyPoll: 100 * time.Millisecond})
		idempotentConsumer(t, b, db, "OUTAGE_CONSUMER")

		ctx := context.Background()
		var ids []string
		write := func(n int) {
			for range n {
				env, err := createThing(ctx, ob, "t1")
				if err != nil {
					t.Fatalf("the API must keep accepting changes while NATS is away: %v", err)
				}
				ids = append(ids, env.ID)
			}
		}
		write(100)
		srv.Shutdown()
		srv.WaitForShutdown()
		write(100) // NATS is down: changes still commit, their events wait in the outbox
		if pending, _ := relay.Pending(ctx); pending == 0 {
			t.Fatal("expected events waiting in the outbox while NATS is down")
		}
		srv = natsOnPort(t, dir, port)
		write(100)
		appliedOnce(t, db, ids)
	})
}

// TestCrashHelperProcess is the child of the SIGKILL test: it commits
// changes, then (mode "published") publishes them without marking them, and
// waits to be killed.
func TestCrashHelperProcess(t *testing.T) {
	mode := os.Getenv("ALUM_CRASH_CHILD")
	if mode == "" {
		t.Skip("helper process for TestSIGKILLBetweenCommitAndPublish")
	}
	db := openDB(t, os.Getenv("ALUM_CRASH_DB"))
	ob := outbox.New(db, 0)
	ctx := context.Background()
	var ids []string
	for range 50 {
		env, err := createThing(ctx, ob, "t1")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.ID)
	}
	if mode == "published" {
		b, err := bus.Open(ctx, bus.Config{URL: os.Getenv("ALUM_CRASH_NATS")}, nil, bustest.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		startRelay(t, ob, stallAfterPublish{b}, outbox.RelayOptions{BatchSize: 20, SafetyPoll: time.Hour})
		ob.Notify()
		time.Sleep(500 * time.Millisecond) // the first batch is published, never marked
	}
	fmt.Println("READY " + strings.Join(ids, ","))
	time.Sleep(time.Minute)
}

// stallAfterPublish publishes, then never returns: the process dies between
// the bus's acknowledgement and the outbox update.
type stallAfterPublish struct{ b *bus.Bus }

func (s stallAfterPublish) PublishBatchPrefix(ctx context.Context, msgs []bus.Message) (int, error) {
	n, err := s.b.PublishBatchPrefix(ctx, msgs)
	if err == nil {
		select {}
	}
	return n, err
}

func TestSIGKILLBetweenCommitAndPublish(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"committed", "published"} {
		for _, kind := range storetest.Kinds() {
			t.Run(mode+"/"+string(kind), func(t *testing.T) {
				t.Parallel()
				dbURL := storetest.URL(t, kind)
				srv := natsOnPort(t, t.TempDir(), 0)
				t.Cleanup(srv.Shutdown)
				b, err := bus.Open(context.Background(), bus.Config{URL: srv.ClientURL()}, bus.NewMetrics(nil), bustest.Logger(t))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(b.Close)

				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), "ALUM_CRASH_CHILD="+mode, "ALUM_CRASH_DB="+dbURL, "ALUM_CRASH_NATS="+srv.ClientURL())
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				var ids []string
				sc := bufio.NewScanner(out)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for sc.Scan() {
					if line, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
						ids = strings.Split(line, ",")
						break
					}
				}
				if len(ids) != 50 {
					_ = cmd.Process.Kill()
					t.Fatalf("child did not report its 50 committed events (got %d)", len(ids))
				}
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				_ = cmd.Wait()

				db := openDB(t, dbURL)
				ob := outbox.New(db, 0)
				idempotentConsumer(t, b, db, "CRASH_CONSUMER")
				startRelay(t, ob, b, outbox.RelayOptions{BatchSize: 20, SafetyPoll: 50 * time.Millisecond})
				appliedOnce(t, db, ids)
				seen := map[string]int{}
				for _, id := range streamIDs(t, b) {
					seen[id]++
				}
				for _, id := range ids {
					if seen[id] != 1 {
						t.Fatalf("event %s is %d times in the stream", id, seen[id])
					}
				}
			})
		}
	}
}

func TestUncleanRestartRepublishesRecentEvents(t *testing.T) {
	t.Parallel()
	db := openDB(t, storetest.URL(t, store.SQLite))
	first := bustest.Open(t, "")
	ob := outbox.New(db, 0)
	r := startRelay(t, ob, first, outbox.RelayOptions{SafetyPoll: 20 * time.Millisecond})
	ctx := context.Background()
	var ids []string
	for range 10 {
		env, err := createThing(ctx, ob, "t1")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.ID)
	}
	bustest.Eventually(t, 5*time.Second, "published", func() bool {
		n, err := r.Pending(ctx)
		return err == nil && n == 0
	})
	_ = r.Stop(ctx)
	// The bus lost what it had not synced: a new, empty server stands for it.
	second := bustest.Open(t, "")
	startRelay(t, ob, second, outbox.RelayOptions{SafetyPoll: 20 * time.Millisecond, RepublishWindow: time.Minute})
	bustest.Eventually(t, 5*time.Second, "republished", func() bool {
		return len(streamIDs(t, second)) == len(ids)
	})
	if got := strings.Join(streamIDs(t, second), ","); got != strings.Join(ids, ",") {
		t.Fatalf("republished %s, want %s", got, strings.Join(ids, ","))
	}
}

func TestPublishedRowsArePrunedAfterRetention(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db0 *store.DB) {
		db := openDB(t, db0.URL())
		b := bustest.Open(t, "")
		ob := outbox.New(db, 0)
		startRelay(t, ob, b, outbox.RelayOptions{SafetyPoll: 20 * time.Millisecond, Retention: 100 * time.Millisecond})
		ctx := context.Background()
		for range 10 {
			if _, err := createThing(ctx, ob, "t1"); err != nil {
				t.Fatal(err)
			}
		}
		// SQLite keeps the newest row: its seq is what numbers the next one.
		kept := map[store.Kind]int{store.SQLite: 1, store.Postgres: 0}[db.Kind()]
		bustest.Eventually(t, 10*time.Second, "published rows pruned", func() bool {
			var n int
			_ = db.Reader().QueryRow(`SELECT count(*) FROM outbox`).Scan(&n)
			return n == kept
		})
		if got := len(streamIDs(t, b)); got != 10 {
			t.Fatalf("stream has %d events, want 10", got)
		}
		// An event committed after the prune still reaches the bus.
		env, err := createThing(ctx, ob, "t1")
		if err != nil {
			t.Fatal(err)
		}
		bustest.Eventually(t, 10*time.Second, "the event after the prune published", func() bool {
			ids := streamIDs(t, b)
			return len(ids) == 11 && ids[10] == env.ID
		})
	})
}

// slowPublisher takes delay over each batch, as a busy bus would.
type slowPublisher struct {
	outbox.Publisher
	delay time.Duration
}

func (s slowPublisher) PublishBatchPrefix(ctx context.Context, msgs []bus.Message) (int, error) {
	time.Sleep(s.delay)
	return s.Publisher.PublishBatchPrefix(ctx, msgs)
}

// A relay that never idles, every batch full because a backlog is
// waiting, still prunes on schedule: published rows do not pile up for as
// long as a burst lasts.
func TestPublishedRowsArePrunedWhileABacklogRemains(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db0 *store.DB) {
		db := openDB(t, db0.URL())
		b := bustest.Open(t, "")
		ob := outbox.New(db, 0)
		ctx := context.Background()
		const events, batch = 4000, 10 // 400 batches of 10 ms: about 4 s of backlog
		envs := make([]event.Envelope, events)
		for i := range envs {
			env, err := event.New(ctx, event.ContactCreated, event.SourceContacts, "t1", event.ContactCreatedData{ContactID: event.NewID(), Version: 1})
			if err != nil {
				t.Fatal(err)
			}
			envs[i] = env
		}
		if err := ob.InTx(ctx, func(_ *sql.Tx, emit outbox.Emit) error { return emit(envs...) }); err != nil {
			t.Fatal(err)
		}
		relay := startRelay(t, ob, slowPublisher{Publisher: b, delay: 10 * time.Millisecond},
			outbox.RelayOptions{BatchSize: batch, SafetyPoll: time.Hour, Retention: 100 * time.Millisecond})
		bustest.Eventually(t, 20*time.Second, "published rows pruned while others still wait", func() bool {
			var left int
			_ = db.Reader().QueryRow(`SELECT count(*) FROM outbox`).Scan(&left)
			pending, err := relay.Pending(ctx)
			return err == nil && pending > 0 && left < events && int64(left) > pending
		})
		bustest.Eventually(t, 20*time.Second, "every event published", func() bool {
			return len(streamIDs(t, b)) == events
		})
	})
}

// On PostgreSQL a commit made by another instance (another Outbox on the
// same schema) wakes the leading relay through NOTIFY on the schema's own
// channel, with no polling; a commit in another schema does not.
func TestCommitOfAnotherInstanceWakesTheRelay(t *testing.T) {
	t.Parallel()
	url := storetest.URL(t, store.Postgres)
	db := openDB(t, url)
	b := bustest.Open(t, "")
	relay := startRelay(t, outbox.New(db, 0), b, outbox.RelayOptions{SafetyPoll: time.Hour})
	ctx := context.Background()
	bustest.Eventually(t, 10*time.Second, "the relay leading", func() bool {
		// Leadership is taken within a moment of starting; until then a
		// commit's wake-up finds a relay that does not publish yet.
		n, err := relay.Pending(ctx)
		return err == nil && n == 0
	})
	time.Sleep(500 * time.Millisecond)
	other := outbox.New(openDB(t, url), 0) // the other instance
	env, err := createThing(ctx, other, "t1")
	if err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 10*time.Second, "the other instance's event published", func() bool {
		ids := streamIDs(t, b)
		return len(ids) == 1 && ids[0] == env.ID
	})
}

// Migration 002 rebuilds the SQLite outbox without AUTOINCREMENT. Whatever
// the relay left, a row committed after it must number above the cursor:
// with rows left the numbering continues from the highest, and a table
// pruned empty starts over with the cursor.
func TestRowidMigrationKeepsNewRowsAboveTheCursor(t *testing.T) {
	t.Parallel()
	first := fstest.MapFS{}
	all := outbox.Migrations()
	names, err := fs.Glob(all, "001_*")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(all, name)
		if err != nil {
			t.Fatal(err)
		}
		first[name] = &fstest.MapFile{Data: b}
	}
	for _, tc := range []struct {
		name            string
		rows, published int // rows written under 001, how many of them published
		pruned          int // the oldest rows pruned
		wantPending     int64
	}{
		{name: "pruned empty", rows: 5, published: 5, pruned: 5, wantPending: 1},
		{name: "published rows kept", rows: 5, published: 5, pruned: 2, wantPending: 1},
		{name: "unpublished rows left", rows: 6, published: 4, pruned: 3, wantPending: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, store.SQLite)
			if err := db.Migrate(ctx, "outbox", first); err != nil {
				t.Fatal(err)
			}
			ob := outbox.New(db, 0)
			write := func() {
				t.Helper()
				env, err := event.New(ctx, event.ContactCreated, event.SourceContacts, "t1", event.ContactCreatedData{ContactID: event.NewID(), Version: 1})
				if err != nil {
					t.Fatal(err)
				}
				if err := ob.InTx(ctx, func(_ *sql.Tx, emit outbox.Emit) error { return emit(env) }); err != nil {
					t.Fatal(err)
				}
			}
			for range tc.rows {
				write()
			}
			for _, stmt := range []string{
				fmt.Sprintf(`UPDATE outbox_relay SET published_seq = %d`, tc.published),
				fmt.Sprintf(`DELETE FROM outbox WHERE seq <= %d`, tc.pruned),
			} {
				if _, err := db.Writer().ExecContext(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Migrate(ctx, "outbox", outbox.Migrations()); err != nil {
				t.Fatal(err)
			}
			write()
			r := outbox.NewRelay(ob, nil, outbox.RelayOptions{}, bustest.Logger(t), nil)
			if n, err := r.Pending(ctx); err != nil || n != tc.wantPending {
				t.Fatalf("pending after the migration and one new event = %d (%v), want %d", n, err, tc.wantPending)
			}
		})
	}
}
