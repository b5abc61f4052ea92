package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	dto "github.com/prometheus/client_model/go"
)

// BenchmarkContactCreateAPI creates contacts through the HTTP API of a
// running embedded instance (the relay, segments and analytics consumers
// working alongside), 32 requests in flight, and reports creates/s.
func BenchmarkContactCreateAPI(b *testing.B) {
	for _, kind := range storetest.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			a := startApp(b, testConfig(b, storetest.URL(b, kind)))
			_, key, err := a.Tenants().Create(context.Background(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			url := "http://" + a.HTTPAddr() + "/api/v1/contacts"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var n atomic.Int64
			b.SetParallelism(16) // x GOMAXPROCS goroutines
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					body := fmt.Sprintf(`{"email": "p%d@example.org", "firstName": "P%d", "tags": ["alumni"], "attributes": {"classYear": %d}}`, i, i, 1960+i%66)
					req, _ := http.NewRequest("POST", url, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+key)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 201 {
						b.Errorf("create: %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "creates/s")
		})
	}
}

// BenchmarkPipelineSandbox queues BENCH_MESSAGES (default 20,000) messages
// the way a campaign does (pipeline.message.queued events through the
// outbox, in batches) for as many contacts with email consent, and reports
// messages/s from the first queued to the last sent through the sandbox:
// recipient read, consent and suppression checks, render, provider,
// events, all through the real bus.
func BenchmarkPipelineSandbox(b *testing.B) {
	benchmarkPipeline(b, nil)
}

// BenchmarkPipelineSMTP is BenchmarkPipelineSandbox with email.provider
// smtp, to an SMTP server on loopback that discards what it receives.
func BenchmarkPipelineSMTP(b *testing.B) {
	benchmarkPipeline(b, smtpOnLoopback)
}

// smtpOnLoopback sends email to an SMTP server on loopback that discards
// what it receives, over 8 pooled connections: go-smtp's server in this
// process, or the one BENCH_SMTP_ADDR names (host:port, clear text), for
// example Postfix's smtp-sink, a C test server in a process of its own.
func smtpOnLoopback(b *testing.B, cfg *config.Config) {
	host, port := "127.0.0.1", 0
	if addr := os.Getenv("BENCH_SMTP_ADDR"); addr != "" {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			b.Fatalf("BENCH_SMTP_ADDR %q: %v", addr, err)
		}
		host, port = h, envPort(b, p)
	} else {
		port = startDiscardSMTP(b)
	}
	cfg.Email.Provider = config.ProviderSMTP
	cfg.Email.SMTP = config.SMTPConfig{Host: host, Port: port, Security: "none", PoolSize: 8}
}

func envPort(b *testing.B, s string) int {
	b.Helper()
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 {
		b.Fatalf("port %q: want 1 to 65535", s)
	}
	return p
}

// envCount is the positive whole number in the variable name, or def.
func envCount(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchEachKind runs body once per op on every configured storage engine
// (a sub-benchmark each), with the timer stopped and a test configuration
// of that engine that configure adjusted.
func benchEachKind(b *testing.B, configure func(*testing.B, *config.Config), body func(b *testing.B, cfg config.Config)) {
	for _, kind := range storetest.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				cfg := testConfig(b, storetest.URL(b, kind))
				if configure != nil {
					configure(b, &cfg)
				}
				body(b, cfg)
			}
		})
	}
}

func benchmarkPipeline(b *testing.B, configure func(*testing.B, *config.Config)) {
	n := envCount("BENCH_MESSAGES", 20_000)
	benchEachKind(b, configure, func(b *testing.B, cfg config.Config) {
		// The pipeline and what it reads and feeds; not segments,
		// whose evaluation of the imported contacts would run
		// alongside.
		cfg.Modules = []string{"contacts", "templates", "pipeline", "analytics"}
		a := startApp(b, cfg)
		ctx := context.Background()
		tenantObj, _, err := a.Tenants().Create(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		tenant := tenantObj.ID
		path := filepath.Join(b.TempDir(), "contacts.csv")
		var csv strings.Builder
		csv.WriteString("email,firstName,consent.email\n")
		for i := range n {
			fmt.Fprintf(&csv, "p%d@example.org,P%d,yes\n", i, i)
		}
		if err := os.WriteFile(path, []byte(csv.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		if _, err := app.ContactImporter(a.DB(), config.Default(), quietLog()).Run(ctx, tenant, "csv", "create", path, nil); err != nil {
			b.Fatal(err)
		}
		ids := contactIDs(b, a, tenant)
		tplID := activeTemplate(b, a, tenant)
		stopProfile := profileTimedPart(b)
		b.StartTimer()
		start, cpu := time.Now(), processCPU()
		for lo := 0; lo < n; lo += 500 {
			err := a.Outbox().InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
				envs := make([]event.Envelope, 0, 500)
				for i := lo; i < min(lo+500, n); i++ {
					env, err := event.New(ctx, event.PipelineMessageQueued, "campaigns-service", tenant, event.MessageData{
						MessageID: event.NewID(), Channel: "email", ContactID: ids[i], RecipientAddress: fmt.Sprintf("p%d@example.org", i),
						SourceType: event.MessageSourceCampaign, SourceID: "bench", TemplateID: tplID, SourceName: "Bench"})
					if err != nil {
						return err
					}
					envs = append(envs, env)
				}
				return emit(envs...)
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		// Done when every message's pipeline.message.sent is on the bus
		// (it commits with the message's status): read from the metrics,
		// since counting the messages table by status would scan it.
		waitFor(b, 30*time.Minute, func() bool {
			return publishedTotal(b, a, event.PipelineMessageSent) >= float64(n)
		})
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
		b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(n), "cpu-µs/msg")
		stopProfile()
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	})
}

// profileTimedPart writes a CPU profile of the timed part alone to the file
// BENCH_CPUPROFILE names (go test's -cpuprofile would include the setup,
// which here dwarfs the part measured), and the heap at its end to the
// file BENCH_MEMPROFILE names (and the heap at its start to that name
// with .start appended). It returns the function that stops it.
func profileTimedPart(b *testing.B) func() {
	b.Helper()
	var stops []func()
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}
	if path := os.Getenv("BENCH_MEMPROFILE"); path != "" {
		writeHeap := func(path string) {
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				b.Fatal(err)
			}
		}
		// The allocations of the timed part alone are the difference:
		// go tool pprof -sample_index alloc_space -diff_base path.start path
		writeHeap(path + ".start")
		stops = append(stops, func() { writeHeap(path) })
	}
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func contactIDs(b *testing.B, a *app.App, tenant string) []string {
	b.Helper()
	rows, err := a.DB().Reader().Query(`SELECT id FROM contacts WHERE tenant_id = $1 ORDER BY email`, tenant)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

func activeTemplate(b *testing.B, a *app.App, tenant string) string {
	b.Helper()
	html := "<p>Dear {{contact.firstName | default: \"friend\"}}, read <a href=\"https://example.edu/news?issue=42\">this issue online</a>.</p>" + strings.Repeat("<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.</p>", 40) +
		`<a href="{{unsubscribeUrl}}">Unsubscribe</a>`
	req, _ := http.NewRequest("POST", "http://"+a.HTTPAddr()+"/api/v1/templates", strings.NewReader(fmt.Sprintf(
		`{"name": "Newsletter", "channel": "email", "content": {"subject": "News for {{contact.firstName}}", "html": %q, "from": "alumni@example.edu"}}`, html)))
	_, key, _ := a.Tenants().CreateKey(context.Background(), tenant, "bench")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var doc struct{ Data struct{ ID string } }
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	req, _ = http.NewRequest("POST", "http://"+a.HTTPAddr()+"/api/v1/templates/"+doc.Data.ID+"/activate", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		b.Fatalf("activate: %v %v", resp, err)
	}
	return doc.Data.ID
}

// publishedTotal reads events_published_total{subject} (the counter alone:
// gathering the whole registry every few milliseconds would cost the run
// measurable CPU).
func publishedTotal(b *testing.B, a *app.App, subject string) float64 {
	b.Helper()
	var m dto.Metric
	if err := a.Bus().Metrics().Published.WithLabelValues(subject).Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// processCPU is the CPU time (user and system) the process has used so far:
// per message, it is steadier than throughput on a noisy machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSSMiB is the process's peak resident memory (Linux), the whole test
// binary included.
func peakRSSMiB() float64 { return rssMiB("VmHWM:") }

// rssMiB reads one memory line of /proc/self/status (VmHWM: the peak,
// VmRSS: now) in MiB.
func rssMiB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// resetPeakRSS starts the peak resident memory (VmHWM) over from the
// current size (Linux 4.0+), so a figure covers the part measured, not the
// set-up before it.
func resetPeakRSS(b *testing.B) {
	b.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak RSS not reset (%v): the figure includes the set-up", err)
	}
}

// BenchmarkCampaignSandbox sends a campaign to BENCH_RECIPIENTS contacts
// (default 20,000) with email consent through the sandbox provider, and
// reports the time from the start request until the campaign is completed:
// every recipient queued, sent, and its sent status tracked by
// CAMPAIGNS_TRACKING_CONSUMER (deliveries and analytics keep flowing
// alongside). The peak RSS covers the send only.
func BenchmarkCampaignSandbox(b *testing.B) {
	benchmarkCampaign(b, nil)
}

// BenchmarkCampaignSMTP is BenchmarkCampaignSandbox to an SMTP server on
// loopback that discards what it receives (8 pooled connections).
func BenchmarkCampaignSMTP(b *testing.B) {
	benchmarkCampaign(b, smtpOnLoopback)
}

func benchmarkCampaign(b *testing.B, configure func(*testing.B, *config.Config)) {
	n := envCount("BENCH_RECIPIENTS", 20_000)
	benchEachKind(b, configure, func(b *testing.B, cfg config.Config) {
		cfg.Modules = []string{"contacts", "segments", "templates", "campaigns", "pipeline", "analytics"}
		cfg.Campaigns.MaxInFlight = envCount("BENCH_INFLIGHT", cfg.Campaigns.MaxInFlight)
		a := startApp(b, cfg)
		ctx := context.Background()
		tenantObj, key, err := a.Tenants().Create(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(b.TempDir(), "contacts.csv")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintln(f, "email,firstName,consent.email")
		for i := range n {
			fmt.Fprintf(f, "p%d@example.org,P%d,yes\n", i, i)
		}
		f.Close()
		if _, err := app.ContactImporter(a.DB(), config.Default(), quietLog()).Run(ctx, tenantObj.ID, "csv", "create", path, nil); err != nil {
			b.Fatal(err)
		}
		c := benchClient{b: b, base: "http://" + a.HTTPAddr(), key: key}
		segment := c.post("/api/v1/segments", `{"name": "Everyone", "rules": {"all": [{"field": "email", "op": "contains", "value": "@example.org"}]}}`)
		tpl := activeTemplate(b, a, tenantObj.ID)
		waitFor(b, 10*time.Minute, func() bool { return c.get("/api/v1/segments/" + segment)["members"] == float64(n) })
		waitIdle(b, a) // contact events from the import handled before the clock starts
		campaign := c.post("/api/v1/campaigns", fmt.Sprintf(`{"name": "Bench", "channel": "email", "templateId": %q, "segmentIds": [%q]}`, tpl, segment))
		resetPeakRSS(b)
		stopProfile := profileTimedPart(b)
		b.StartTimer()
		start, cpu := time.Now(), processCPU()
		c.post("/api/v1/campaigns/"+campaign+"/start", "")
		// Memory at each tenth of the send: it should stay flat, however
		// large the audience.
		var samples []string
		next := 0.1
		waitFor(b, 2*time.Hour, func() bool {
			st := c.get("/api/v1/campaigns/" + campaign + "/stats")
			if sent, _ := st["sent"].(float64); sent >= next*float64(n) {
				samples = append(samples, fmt.Sprintf("%.0f%%: %.0f MiB", next*100, rssMiB("VmRSS:")))
				next += 0.1
			}
			return st["status"] == "completed"
		})
		b.Logf("RSS during the send (sent share: resident MiB): %s", strings.Join(samples, ", "))
		elapsed, cpuUsed := time.Since(start), processCPU()-cpu
		stopProfile()
		if st := c.get("/api/v1/campaigns/" + campaign + "/stats"); st["sent"] != float64(n) {
			b.Fatalf("stats after completion: %v", st)
		}
		b.ReportMetric(elapsed.Seconds(), "s/campaign")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(cpuUsed.Microseconds())/float64(n), "cpu-µs/msg")
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	})
}

// benchClient calls the API of an app under benchmark.
type benchClient struct {
	b         *testing.B
	base, key string
}

func (c benchClient) call(method, path, body string) map[string]any {
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.b.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Data map[string]any `json:"data"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 || json.Unmarshal(raw, &doc) != nil {
		c.b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return doc.Data
}

func (c benchClient) get(path string) map[string]any { return c.call("GET", path, "") }

// post returns the id of what it created (or "" for an action).
func (c benchClient) post(path, body string) string {
	id, _ := c.call("POST", path, body)["id"].(string)
	return id
}

func waitFor(b *testing.B, limit time.Duration, done func() bool) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			b.Fatalf("not done after %s", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitIdle waits until every durable consumer of the event stream has
// handled everything published so far.
func waitIdle(b *testing.B, a *app.App) {
	b.Helper()
	ctx := context.Background()
	waitFor(b, 10*time.Minute, func() bool {
		stream, err := a.Bus().JetStream().Stream(ctx, bus.EventsStream)
		if err != nil {
			return false
		}
		lister := stream.ListConsumers(ctx)
		for ci := range lister.Info() {
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				return false
			}
		}
		return lister.Err() == nil
	})
}
