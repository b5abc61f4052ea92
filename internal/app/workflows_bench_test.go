package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
)

// BenchmarkWorkflowRunsFromContactEvents starts a run of one active
// workflow per contact event, in embedded mode with every module running,
// and reports runs/s. The workflow's only node is a 30-day delay, so each
// run starts, arms its timer and waits: this measures starting, not
// sending. BENCH_CONTACTS (default 20,000) contacts.
//
//   - import: the workflow is triggered by contact.created, and the clock
//     runs from the import request (POST /api/v1/contacts/imports, the
//     fastest way to make contact events) until every contact has its run.
//     import-s is when the import finished, i.e. when the last
//     contact.created was in the outbox.
//   - custom-events: the contacts exist already; the clock runs from the
//     first of BENCH_CONTACTS workflow.event.received events, written to
//     the outbox 500 per transaction (about 1 s for 20,000), until every
//     run exists: the trigger consumer working from a backlog.
func BenchmarkWorkflowRunsFromContactEvents(b *testing.B) {
	n := envCount("BENCH_CONTACTS", 20_000)
	b.Run("import", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			w := newWorkflowBench(b)
			wf := w.workflow(`{"name": "Welcome", "trigger": {"event": "contact.created"},
				"nodes": [{"id": "wait", "type": "delay", "duration": "30d"}]}`)
			csv := contactsCSV(n)
			resetPeakRSS(b)
			stopProfile := profileTimedPart(b)
			b.StartTimer()
			start := time.Now()
			imp := w.startImport(csv)
			var imported time.Duration
			waitFor(b, 30*time.Minute, func() bool {
				if imported == 0 && w.c.get("/api/v1/contacts/imports/" + imp)["status"] == "completed" {
					imported = time.Since(start)
				}
				return w.counter("workflow_runs_started_total") >= float64(n)
			})
			elapsed := time.Since(start)
			stopProfile()
			w.checkRuns(wf, n)
			if imported == 0 {
				waitFor(b, time.Minute, func() bool { return w.c.get("/api/v1/contacts/imports/" + imp)["status"] == "completed" })
				imported = time.Since(start)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "runs/s")
			b.ReportMetric(imported.Seconds(), "import-s")
			b.ReportMetric(elapsed.Seconds(), "s/all-started")
			b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
		}
	})
	b.Run("custom-events", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			w := newWorkflowBench(b)
			ids := w.importContacts(n)
			wf := w.workflow(`{"name": "Gift", "trigger": {"event": "custom", "name": "gift"},
				"nodes": [{"id": "wait", "type": "delay", "duration": "30d"}]}`)
			resetPeakRSS(b)
			stopProfile := profileTimedPart(b)
			b.StartTimer()
			start := time.Now()
			w.postEvents("gift", ids)
			published := time.Since(start)
			waitFor(b, 30*time.Minute, func() bool { return w.counter("workflow_runs_started_total") >= float64(n) })
			elapsed := time.Since(start)
			stopProfile()
			w.checkRuns(wf, n)
			b.ReportMetric(float64(n)/elapsed.Seconds(), "runs/s")
			b.ReportMetric(published.Seconds(), "events-written-s")
			b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
		}
	})
}

// BenchmarkWorkflowDelayedRuns puts BENCH_RUNS (default 100,000) runs in a
// delay that ends for all of them at the same moment (a delay "until" a
// time of day, the next whole minute after they can all have started),
// and reports how late they were woken (p50, p99, max: each run's exit
// from the delay against the wake time, read from its path; the
// workflow_wake_lateness_seconds histogram's p50 and p99 are logged
// beside), the time from the wake moment until every run has completed,
// the live heap and resident memory while they all wait, and the peak RSS
// from the first run started to the last completed (the whole test
// binary's).
//
// The runs are started by custom events written to the outbox, after the
// contacts were imported. The wake moment leaves them N /
// BENCH_START_RATE (default 1,000) runs/s plus 10 s to start; the
// benchmark fails if they were not all waiting by then.
func BenchmarkWorkflowDelayedRuns(b *testing.B) {
	n := envCount("BENCH_RUNS", 100_000)
	rate := envCount("BENCH_START_RATE", 1_000)
	for b.Loop() {
		b.StopTimer()
		w := newWorkflowBench(b)
		ids := w.importContacts(n)
		lead := time.Duration(float64(n)/float64(rate)*float64(time.Second)) + 10*time.Second
		wakeAt := time.Now().UTC().Add(lead).Truncate(time.Minute).Add(time.Minute)
		wf := w.workflow(fmt.Sprintf(`{"name": "Reminder", "trigger": {"event": "custom", "name": "remind"},
			"nodes": [{"id": "wait", "type": "delay", "until": %q}]}`, wakeAt.Format("15:04")))
		resetPeakRSS(b)
		stopProfile := profileTimedPart(b)
		b.StartTimer()
		start := time.Now()
		w.postEvents("remind", ids)
		waitFor(b, lead+time.Minute, func() bool { return w.counter("workflow_runs_started_total") >= float64(n) })
		started := time.Since(start)
		if !time.Now().Before(wakeAt) {
			b.Fatalf("%d runs took %s to start, past their wake time %s: lower BENCH_START_RATE", n, started.Round(time.Millisecond), wakeAt.Format(time.TimeOnly))
		}
		w.checkRuns(wf, n)
		// Memory while every run waits.
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		waitingRSS := rssMiB("VmRSS:")
		msgs, bytes := w.timerStream()
		b.Logf("%d runs started in %s (%.0f runs/s); waiting: live heap %.0f MiB, RSS %.0f MiB, ALUM_TIMERS %d messages %.1f MiB; wake at %s, in %s",
			n, started.Round(time.Millisecond), float64(n)/started.Seconds(), float64(ms.HeapAlloc)/(1<<20), waitingRSS,
			msgs, float64(bytes)/(1<<20), wakeAt.Format(time.TimeOnly), time.Until(wakeAt).Round(time.Second))

		waitFor(b, time.Until(wakeAt)+30*time.Minute, func() bool {
			time.Sleep(80 * time.Millisecond) // polls at 100 ms, the runs' work being what is measured
			return w.counter("workflow_runs_ended_total") >= float64(n)
		})
		allDone := time.Since(wakeAt)
		stopProfile()

		late := w.lateness(wf, wakeAt)
		if len(late) != n {
			b.Fatalf("%d runs left their delay, want %d", len(late), n)
		}
		var completed int
		if err := w.a.DB().Reader().QueryRow(`SELECT count(*) FROM workflow_runs WHERE tenant_id = $1 AND workflow_id = $2 AND status = 'completed'`,
			w.tenant, wf).Scan(&completed); err != nil || completed != n {
			b.Fatalf("%d runs completed (%v), want %d", completed, err, n)
		}
		h := w.histogram("workflow_wake_lateness_seconds")
		b.Logf("lateness from the runs' paths: p50 %s, p90 %s, p99 %s, max %s; histogram workflow_wake_lateness_seconds (%d samples): p50 ~%.2fs, p99 ~%.2fs; timers handled %.0f; all %d completed %s after their wake time",
			late[n/2], late[n*9/10], late[n*99/100], late[n-1], h.GetSampleCount(), histQuantile(h, 0.5), histQuantile(h, 0.99),
			w.counter("events_acked_total", "consumer", "WORKFLOWS_TIMER_CONSUMER"), n, allDone.Round(time.Millisecond))
		b.ReportMetric(late[n/2].Seconds(), "p50-late-s")
		b.ReportMetric(late[n*99/100].Seconds(), "p99-late-s")
		b.ReportMetric(late[n-1].Seconds(), "max-late-s")
		b.ReportMetric(allDone.Seconds(), "s/all-completed")
		b.ReportMetric(float64(n)/started.Seconds(), "runs-started/s")
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "waiting-heap-MiB")
		b.ReportMetric(waitingRSS, "waiting-RSS-MiB")
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	}
}

// workflowBench is an embedded app, every module running, with one tenant.
type workflowBench struct {
	b      *testing.B
	a      *app.App
	tenant string
	c      benchClient
}

func newWorkflowBench(b *testing.B) *workflowBench {
	b.Helper()
	a := startApp(b, testConfig(b, ""))
	t, key, err := a.Tenants().Create(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	return &workflowBench{b: b, a: a, tenant: t.ID, c: benchClient{b: b, base: "http://" + a.HTTPAddr(), key: key}}
}

// workflow creates and activates a workflow, and returns its id.
func (w *workflowBench) workflow(body string) string {
	id := w.c.post("/api/v1/workflows", body)
	if st := w.c.call("POST", "/api/v1/workflows/"+id+"/activate", ""); st["status"] != "active" {
		w.b.Fatalf("activate: %v", st)
	}
	return id
}

func contactsCSV(n int) string {
	var csv strings.Builder
	csv.WriteString("email,firstName\n")
	for i := range n {
		fmt.Fprintf(&csv, "p%d@example.org,P%d\n", i, i)
	}
	return csv.String()
}

// startImport posts a CSV to the contacts import API and returns the
// import's id.
func (w *workflowBench) startImport(csv string) string {
	req, _ := http.NewRequest("POST", w.c.base+"/api/v1/contacts/imports", strings.NewReader(csv))
	req.Header.Set("Authorization", "Bearer "+w.c.key)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 202 {
		raw, _ := io.ReadAll(resp.Body)
		w.b.Fatalf("import: %d %s", resp.StatusCode, raw)
	}
	return strings.TrimPrefix(resp.Header.Get("Location"), "/api/v1/contacts/imports/")
}

// importContacts imports n contacts, waits until every consumer has
// handled their events, and returns their ids.
func (w *workflowBench) importContacts(n int) []string {
	imp := w.startImport(contactsCSV(n))
	waitFor(w.b, 30*time.Minute, func() bool {
		st := w.c.get("/api/v1/contacts/imports/" + imp)
		if st["status"] == "failed" || st["status"] == "cancelled" {
			w.b.Fatalf("import: %v", st)
		}
		return st["status"] == "completed"
	})
	waitIdle(w.b, w.a)
	ids := contactIDs(w.b, w.a, w.tenant)
	if len(ids) != n {
		w.b.Fatalf("%d contacts imported, want %d", len(ids), n)
	}
	return ids
}

// postEvents writes one custom event per contact to the outbox, 500 per
// transaction, as POST /api/v1/workflow-events would one at a time.
func (w *workflowBench) postEvents(name string, ids []string) {
	ctx := context.Background()
	for lo := 0; lo < len(ids); lo += 500 {
		err := w.a.Outbox().InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
			envs := make([]event.Envelope, 0, 500)
			for _, id := range ids[lo:min(lo+500, len(ids))] {
				env, err := event.New(ctx, event.WorkflowEventReceived, event.SourceWorkflows, w.tenant,
					event.WorkflowEventReceivedData{Name: name, ContactID: id})
				if err != nil {
					return err
				}
				envs = append(envs, env)
			}
			return emit(envs...)
		})
		if err != nil {
			w.b.Fatal(err)
		}
	}
}

// checkRuns fails unless the workflow has exactly n runs, one per contact.
func (w *workflowBench) checkRuns(wf string, n int) {
	var runs, contacts int
	if err := w.a.DB().Reader().QueryRow(`SELECT count(*), count(DISTINCT contact_id) FROM workflow_runs WHERE tenant_id = $1 AND workflow_id = $2`,
		w.tenant, wf).Scan(&runs, &contacts); err != nil {
		w.b.Fatal(err)
	}
	if runs != n || contacts != n {
		w.b.Fatalf("%d runs for %d contacts, want %d", runs, contacts, n)
	}
}

// lateness returns, sorted, how long after wakeAt each run of wf left its
// delay (the time its path records).
func (w *workflowBench) lateness(wf string, wakeAt time.Time) []time.Duration {
	rows, err := w.a.DB().Reader().Query(`SELECT s.left_at FROM workflow_run_steps s
		JOIN workflow_runs r ON r.tenant_id = s.tenant_id AND r.id = s.run_id
		WHERE s.tenant_id = $1 AND r.workflow_id = $2 AND s.node_id = 'wait' AND s.left_at IS NOT NULL`, w.tenant, wf)
	if err != nil {
		w.b.Fatal(err)
	}
	defer rows.Close()
	var out []time.Duration
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			w.b.Fatal(err)
		}
		out = append(out, time.UnixMilli(ms).Sub(wakeAt))
	}
	if err := rows.Err(); err != nil {
		w.b.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// timerStream returns the messages and bytes ALUM_TIMERS holds.
func (w *workflowBench) timerStream() (uint64, uint64) {
	s, err := w.a.Bus().JetStream().Stream(context.Background(), bus.TimersStream)
	if err != nil {
		w.b.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		w.b.Fatal(err)
	}
	return info.State.Msgs, info.State.Bytes
}

// family gathers the app's registry and returns the named metric family.
func (w *workflowBench) family(name string) *dto.MetricFamily { return metricFamily(w.b, w.a, name) }

// counter sums the named counter's series whose labels include the given
// name/value pairs.
func (w *workflowBench) counter(name string, labels ...string) float64 {
	return counterValue(w.b, w.a, name, labels...)
}

// histogram returns the named histogram (one series).
func (w *workflowBench) histogram(name string) *dto.Histogram {
	mf := w.family(name)
	if mf == nil || len(mf.GetMetric()) == 0 {
		w.b.Fatalf("no histogram %s", name)
	}
	return mf.GetMetric()[0].GetHistogram()
}

// histQuantile estimates quantile q from a histogram's buckets the way
// PromQL's histogram_quantile does (linear inside the bucket).
func histQuantile(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, bk := range h.GetBucket() {
		upper, count := bk.GetUpperBound(), float64(bk.GetCumulativeCount())
		if count >= rank {
			if count == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(count-below)
		}
		lower, below = upper, count
	}
	return lower // in the +Inf bucket: the highest finite bound
}
