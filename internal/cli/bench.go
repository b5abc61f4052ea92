package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/bench"
)

func runBench(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlags(cio, "bench", "alumoutreach bench ceiling|pipeline|latency|all [flags]", `Measures the event path on this machine with real components in a temporary
directory, and prints figures (nothing is asserted):
  ceiling   raw JetStream: async publish of encoded events + a durable consumer
            acking them: the most this machine can do
  pipeline  our full path: state change + outbox in one transaction, relay,
            JetStream, ANALYTICS_INGEST_CONSUMER storing each event once
  latency   one change per transaction at a steady --rate; time from commit
            to the analytics consumer finishing, p50 and p99
  all       each of the above in a process of its own (so peak RSS is each
            one's own), then the pipeline/ceiling ratio`)
	o := bench.Options{Out: cio.out}
	fs.IntVar(&o.Events, "events", 1_000_000, "events for ceiling and pipeline")
	fs.IntVar(&o.Writers, "writers", 4, "goroutines committing changes (pipeline)")
	fs.IntVar(&o.Batch, "batch", 100, "changes per transaction (pipeline)")
	fs.StringVar(&o.Sync, "sync", "1s", "embedded NATS fsync policy: an interval or always")
	fs.IntVar(&o.Rate, "rate", 1000, "events per second (latency)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to run (latency)")
	dir := fs.String("dir", "", "work directory (default: a new temporary directory, removed afterwards)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the scenario to this file (go tool pprof)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("name one scenario: ceiling, pipeline, latency or all")
	}
	if o.Events <= 0 || o.Writers <= 0 || o.Batch <= 0 || o.Rate <= 0 || o.Duration <= 0 {
		return usageErrorf("--events, --writers, --batch, --rate and --duration must be positive")
	}
	if pos[0] == "all" {
		return benchAll(ctx, cio, args)
	}
	run := map[string]func(context.Context, string, bench.Options) (bench.Result, error){
		"ceiling": bench.Ceiling, "pipeline": bench.Pipeline, "latency": bench.Latency,
	}[pos[0]]
	if run == nil {
		return usageErrorf("unknown scenario %q: use ceiling, pipeline, latency or all", pos[0])
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

// benchAll runs each scenario in a fresh process of this binary.
func benchAll(ctx context.Context, cio cmdIO, args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var rest []string
	for _, a := range args {
		if a != "all" {
			rest = append(rest, a)
		}
	}
	for _, s := range []string{"ceiling", "pipeline", "latency"} {
		cmd := exec.CommandContext(ctx, self, append([]string{"bench", s}, rest...)...)
		cmd.Stdout, cmd.Stderr = cio.out, cio.err
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench %s: %w", s, err)
		}
	}
	return nil
}
