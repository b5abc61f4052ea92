package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/bench"
)

func runBench(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlags(cio, "bench", "alumoutreach bench ceiling|pipeline|latency|message-events|all [flags]", `Measures the event path on this machine with real components in a temporary
directory, and prints figures (nothing is asserted):
  ceiling   raw JetStream: async publish of encoded events + a durable consumer
            acking them: the most this machine can do
  pipeline  our full path: state change + outbox in one transaction, relay,
            JetStream, ANALYTICS_INGEST_CONSUMER storing each event once
  latency   one change per transaction at a steady --rate; time from commit
            to the analytics consumer finishing, p50 and p99
  message-events
            the events of --messages campaign messages through the real
            outbox, relay, JetStream and analytics, with stand-in send and
            tracking consumers that only record idempotency and emit the
            next events: the floor under a send, before any of its work.
            By default a sandbox campaign's: queued, sent, delivered,
            campaign.message.sent and .delivered (eight deliveries);
            --delivered=false leaves out the delivery report (SMTP),
            --tracked=false the campaign tracking (the pipeline alone)
  all       ceiling, pipeline and latency, each in a process of its own
            (so peak RSS is each one's own), --runs times, then the medians
            and the pipeline/ceiling ratio`)
	o := bench.Options{Out: cio.out}
	fs.IntVar(&o.Events, "events", 1_000_000, "events for ceiling and pipeline")
	fs.IntVar(&o.Writers, "writers", 4, "goroutines committing changes (pipeline)")
	fs.IntVar(&o.Batch, "batch", 100, "changes per transaction (pipeline)")
	fs.StringVar(&o.Sync, "sync", "1s", "embedded NATS fsync policy: an interval or always")
	fs.IntVar(&o.Rate, "rate", 1000, "events per second (latency)")
	fs.IntVar(&o.Messages, "messages", 100_000, "campaign messages (message-events)")
	fs.BoolVar(&o.Delivered, "delivered", true, "each message is also reported delivered, as the sandbox does (message-events)")
	fs.BoolVar(&o.Tracked, "tracked", true, "campaign tracking re-publishes each status as campaign.message.* (message-events)")
	fs.IntVar(&o.InFlight, "in-flight", 4096, "most messages queued and not yet finished (tracked, or sent without --tracked), as campaigns.max-in-flight (message-events)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to run (latency)")
	dir := fs.String("dir", "", "work directory (default: a new temporary directory, removed afterwards)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the scenario to this file (go tool pprof)")
	runs := fs.Int("runs", 1, "with all: how many times to run the scenarios; the medians are compared")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("name one scenario: ceiling, pipeline, latency, message-events or all")
	}
	if o.Events <= 0 || o.Writers <= 0 || o.Batch <= 0 || o.Rate <= 0 || o.Duration <= 0 || o.Messages <= 0 || o.InFlight < 500 || *runs <= 0 {
		return usageErrorf("--events, --writers, --batch, --rate, --duration, --messages and --runs must be positive, and --in-flight at least 500 (one batch)")
	}
	if pos[0] == "all" {
		return benchAll(ctx, cio, args, *runs)
	}
	run := map[string]func(context.Context, string, bench.Options) (bench.Result, error){
		"ceiling": bench.Ceiling, "pipeline": bench.Pipeline, "latency": bench.Latency, "message-events": bench.MessageEvents,
	}[pos[0]]
	if run == nil {
		return usageErrorf("unknown scenario %q: use ceiling, pipeline, latency, message-events or all", pos[0])
	}
	work := *dir
	if work == "" {
		work, err = os.MkdirTemp("", "alum-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	fmt.Fprintf(cio.out, "running %s (sync %s) in %s\n", pos[0], o.Sync, work)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := run(ctx, work, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(cio.out, r)
	return nil
}

// benchAll runs each scenario in a fresh process of this binary, --runs
// times with ceiling and pipeline alternating (so both see the same machine
// weather), then prints the medians and the pipeline/ceiling ratio.
func benchAll(ctx context.Context, cio cmdIO, args []string, runs int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "all":
		case a == "--runs" || a == "-runs":
			i++ // its value
		case strings.HasPrefix(a, "--runs=") || strings.HasPrefix(a, "-runs="):
		default:
			rest = append(rest, a)
		}
	}
	rates := map[string][]float64{}
	for range runs {
		for _, s := range []string{"ceiling", "pipeline", "latency"} {
			var out bytes.Buffer
			cmd := exec.CommandContext(ctx, self, append([]string{"bench", s}, rest...)...)
			cmd.Stdout, cmd.Stderr = io.MultiWriter(cio.out, &out), cio.err
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("bench %s: %w", s, err)
			}
			if r, ok := parseRate(out.String(), s); ok {
				rates[s] = append(rates[s], r)
			}
		}
	}
	c, p := median(rates["ceiling"]), median(rates["pipeline"])
	if c > 0 && p > 0 {
		fmt.Fprintf(cio.out, "\nmedians over %d run(s): ceiling %.0f/s, pipeline %.0f/s, pipeline/ceiling %.0f%%\n", runs, c, p, 100*p/c)
	}
	return nil
}

// parseRate finds "rate=N/s" on the result line of scenario in out.
func parseRate(out, scenario string) (float64, bool) {
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, scenario+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "rate="); ok {
				r, err := strconv.ParseFloat(strings.TrimSuffix(v, "/s"), 64)
				return r, err == nil
			}
		}
	}
	return 0, false
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
