package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	dto "github.com/prometheus/client_model/go"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// testConfig is the embedded default in a temporary directory, on a free
// HTTP port, without the NATS loopback listener, with fast retries.
func testConfig(t testing.TB, dbURL string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.DatabaseURL = dbURL
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.NATS.ListenAddr = ""
	cfg.Consumer.Backoff = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
	cfg.Consumer.LagPollInterval = 100 * time.Millisecond
	return cfg
}

func startApp(t testing.TB, cfg config.Config, opts ...app.Option) *app.App {
	t.Helper()
	a, err := app.New(context.Background(), cfg, bustest.Logger(t), opts...)
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start app: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	return a
}

type client struct {
	t    *testing.T
	base string
	key  string
}

func (c client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &doc); err != nil {
			c.t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, doc
}

// emit commits a state change with one event per tenant through the outbox,
// as a module does.
func emit(t *testing.T, a *app.App, subject, tenant string, data any) event.Envelope {
	t.Helper()
	ctx := event.WithCorrelationID(context.Background(), "corr-"+tenant)
	env, err := event.New(ctx, subject, event.SourceContacts, tenant, data)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Outbox().InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error { return emit(env) })
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func total(t *testing.T, c client, query string) float64 {
	t.Helper()
	status, doc := c.do("GET", "/api/v1/analytics/events/counts?"+query, "")
	if status != 200 {
		t.Fatalf("counts: %d %v", status, doc)
	}
	return doc["data"].(map[string]any)["total"].(float64)
}

func TestAnalyticsCountsEndToEndWithTenantIsolation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a := startApp(t, testConfig(t, db.URL()))
		ctx := context.Background()
		_, keyA, err := a.Tenants().Create(ctx, "Alumni A")
		if err != nil {
			t.Fatal(err)
		}
		tb, keyB, err := a.Tenants().Create(ctx, "Alumni B")
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + a.HTTPAddr()
		ca, cb := client{t, base, keyA}, client{t, base, keyB}

		tenantA := mustTenant(t, a, keyA)
		for range 5 {
			emit(t, a, event.ContactCreated, tenantA, event.ContactCreatedData{ContactID: event.NewID(), Version: 1})
		}
		emit(t, a, event.ContactTagged, tenantA, event.ContactTagData{ContactID: "c1", Tag: "class-of-2020", Version: 2})
		emit(t, a, event.ContactCreated, tb.ID, event.ContactCreatedData{ContactID: event.NewID(), Version: 1})

		bustest.Eventually(t, 10*time.Second, "tenant A's 6 events counted", func() bool {
			return total(t, ca, "interval=hour") == 6
		})
		if got := total(t, ca, "interval=day&subject=contact.created"); got != 5 {
			t.Fatalf("contact.created for A = %v, want 5", got)
		}
		if got := total(t, ca, "subject=contact.>"); got != 6 {
			t.Fatalf("contact.> for A = %v, want 6", got)
		}
		bustest.Eventually(t, 10*time.Second, "tenant B's event counted", func() bool {
			return total(t, cb, "") == 1
		})

		// 401 paths: missing, malformed and unknown keys.
		for _, key := range []string{"", "not-a-key", "alum_" + strings.Repeat("A", 43)} {
			status, doc := client{t, base, key}.do("GET", "/api/v1/analytics/events/counts", "")
			if status != 401 || doc["error"] == nil {
				t.Fatalf("key %q: %d %v, want 401 with a JSON error", key, status, doc)
			}
		}
		// Bad query: 400 that names the parameter.
		status, doc := ca.do("GET", "/api/v1/analytics/events/counts?from=yesterday", "")
		if status != 400 || !strings.Contains(doc["error"].(map[string]any)["message"].(string), "from") {
			t.Fatalf("bad from: %d %v", status, doc)
		}
	})
}

// twoTenants creates tenants A and B and returns an API client for each.
func twoTenants(t *testing.T, a *app.App) (client, client) {
	t.Helper()
	base := "http://" + a.HTTPAddr()
	var cs []client
	for _, name := range []string{"Alumni A", "Alumni B"} {
		_, key, err := a.Tenants().Create(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, client{t, base, key})
	}
	return cs[0], cs[1]
}

// mustTenant resolves key to its tenant id through the real authenticator.
func mustTenant(t *testing.T, a *app.App, key string) string {
	t.Helper()
	id, err := a.Tenants().Authenticate(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEveryEventStoredOnceUnderRedelivery(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	a := startApp(t, cfg)
	ctx := context.Background()
	_, key, _ := a.Tenants().Create(ctx, "T")
	tenant := mustTenant(t, a, key)
	env := emit(t, a, event.ContactCreated, tenant, event.ContactCreatedData{ContactID: "c1", Version: 1})
	// The same event published again (as after an unclean restart outside
	// the duplicate window) is a second message on the stream.
	dup := env
	data, _ := event.Encode(dup, 0)
	if err := a.Bus().PublishBatch(ctx, []bus.Message{{ID: env.ID + "-again", Subject: env.Type, Data: data}}); err != nil {
		t.Fatal(err)
	}
	c := client{t, "http://" + a.HTTPAddr(), key}
	bustest.Eventually(t, 10*time.Second, "both deliveries acked", func() bool {
		cons, err := a.Bus().JetStream().Consumer(ctx, bus.EventsStream, "ANALYTICS_INGEST_CONSUMER")
		if err != nil {
			return false
		}
		ci, err := cons.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= 2 && ci.NumAckPending == 0
	})
	if got := total(t, c, ""); got != 1 {
		t.Fatalf("event stored %v times, want once", got)
	}
}

func TestDLQAdminAPIIsTenantScoped(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	ctx := context.Background()
	_, keyA, _ := a.Tenants().Create(ctx, "A")
	_, keyB, _ := a.Tenants().Create(ctx, "B")
	tenantA := mustTenant(t, a, keyA)
	// A consumer that refuses everything, to fill the DLQ through the real path.
	c, err := a.Bus().StartConsumer(ctx, bus.ConsumerOptions{Name: "REFUSING_CONSUMER", Filters: []string{"contact.>"},
		Handler: func(context.Context, event.Envelope) error { return bus.Permanent(io.ErrUnexpectedEOF) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	emit(t, a, event.ContactCreated, tenantA, event.ContactCreatedData{ContactID: "c1"})
	base := "http://" + a.HTTPAddr()
	ca, cb := client{t, base, keyA}, client{t, base, keyB}
	var items []any
	bustest.Eventually(t, 10*time.Second, "A sees its dead letter", func() bool {
		_, doc := ca.do("GET", "/api/v1/admin/dlq", "")
		items, _ = doc["data"].([]any)
		return len(items) == 1
	})
	entry := items[0].(map[string]any)
	if entry["consumer"] != "REFUSING_CONSUMER" || entry["error"].(map[string]any)["code"] != "PERMANENT_ERROR" {
		t.Fatalf("entry %v", entry)
	}
	seq := int(entry["seq"].(float64))
	if _, doc := cb.do("GET", "/api/v1/admin/dlq", ""); len(doc["data"].([]any)) != 0 {
		t.Fatalf("tenant B sees A's dead letters: %v", doc)
	}
	path := "/api/v1/admin/dlq/" + strconv.Itoa(seq)
	if status, _ := cb.do("GET", path, ""); status != 404 {
		t.Fatalf("B reads A's entry: %d", status)
	}
	if status, _ := cb.do("POST", path+"/replay", ""); status != 404 {
		t.Fatalf("B replays A's entry: %d", status)
	}
	if status, _ := cb.do("DELETE", path, ""); status != 404 {
		t.Fatalf("B purges A's entry: %d", status)
	}
	if status, _ := ca.do("GET", "/api/v1/admin/dlq/abc", ""); status != 400 {
		t.Fatalf("bad seq: %d", status)
	}
	if status, doc := ca.do("POST", "/api/v1/admin/dlq/purge", `{"consumer":"REFUSING_CONSUMER"}`); status != 200 || doc["data"].(map[string]any)["purged"].(float64) != 1 {
		t.Fatalf("purge all: %d %v", status, doc)
	}
}

func TestHealthReadinessMetricsAndCleanShutdown(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	a, err := app.New(context.Background(), cfg, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.HTTPAddr()
	c := client{t, base, ""}
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, _ := c.do("GET", p, ""); status != 200 {
			t.Fatalf("%s: %d", p, status)
		}
	}
	emit(t, a, event.ContactCreated, "t", event.ContactCreatedData{ContactID: "c"})
	bustest.Eventually(t, 10*time.Second, "metrics with the spec's names", func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, name := range []string{
			`events_published_total{subject="contact.created"} 1`,
			`events_consumed_total{consumer="ANALYTICS_INGEST_CONSUMER",subject="contact.created"} 1`,
			`events_acked_total{consumer="ANALYTICS_INGEST_CONSUMER",subject="contact.created"} 1`,
			`consumer_lag{consumer="ANALYTICS_INGEST_CONSUMER"} 0`,
			`event_processing_duration_bucket{consumer="ANALYTICS_INGEST_CONSUMER",subject="contact.created"`,
		} {
			if !strings.Contains(string(b), name) {
				return false
			}
		}
		return true
	})
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "RUNNING")); err != nil {
		t.Fatalf("running marker missing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "RUNNING")); !os.IsNotExist(err) {
		t.Fatalf("clean shutdown left the running marker: %v", err)
	}
}

func TestDataDirInUseIsRefused(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	startApp(t, cfg)
	_, err := app.New(context.Background(), cfg, bustest.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second app on a directory in use: %v", err)
	}
	if _, err := app.OpenToolBus(context.Background(), cfg, bustest.Logger(t)); err == nil || !strings.Contains(err.Error(), "nats-listen-addr") {
		t.Fatalf("OpenToolBus on a directory in use: %v", err)
	}
}

// metricFamily gathers a's registry and returns the named family, or nil.
func metricFamily(tb testing.TB, a *app.App, name string) *dto.MetricFamily {
	tb.Helper()
	mfs, err := a.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

// counterValue sums the named counter's series whose labels include the
// given name/value pairs.
func counterValue(tb testing.TB, a *app.App, name string, labels ...string) float64 {
	tb.Helper()
	mf := metricFamily(tb, a, name)
	if mf == nil {
		return 0
	}
	var sum float64
series:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
			}
			if !found {
				continue series
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}
