// Package bustest starts a real embedded NATS JetStream server for tests,
// with the platform's streams, in a temporary directory.
package bustest

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
)

// Open starts an embedded bus in dir (a new temporary directory when dir is
// empty) and closes it when the test ends.
func Open(t testing.TB, dir string) *bus.Bus {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	b, err := bus.Open(context.Background(), bus.Config{DataDir: dir, SyncInterval: time.Second}, bus.NewMetrics(nil), Logger(t))
	if err != nil {
		t.Fatalf("open embedded bus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Logger logs every record to stderr when ALUM_TEST_LOG is set. Otherwise
// it keeps warnings and errors in the test's log, which go test shows only
// for a failed test: a wait that times out then says what went wrong.
func Logger(t testing.TB) *slog.Logger {
	t.Helper()
	if os.Getenv("ALUM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w := &testLog{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testLog writes to t.Log until the test's cleanups run: goroutines that
// outlive the test must not log to it.
type testLog struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

func (w *testLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLog) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// ContactCreated returns a valid contact.created event for tenant.
func ContactCreated(t testing.TB, tenant string) event.Envelope {
	t.Helper()
	env, err := event.New(context.Background(), event.ContactCreated, event.SourceContacts, tenant,
		event.ContactCreatedData{ContactID: event.NewID(), Email: "a@example.org", Version: 1})
	if err != nil {
		t.Fatalf("new event: %v", err)
	}
	return env
}

// Eventually polls cond every 10 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
