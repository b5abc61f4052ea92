package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
)

const dlqUsage = `alumoutreach dlq list [--consumer C] [--subject S] [--tenant T] [--limit N] [--after SEQ] [--json]
  alumoutreach dlq show SEQ
  alumoutreach dlq replay SEQ | --all [--consumer C] [--subject S] [--tenant T]
  alumoutreach dlq purge SEQ | --all [--consumer C] [--subject S] [--tenant T]`

func runDLQ(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlags(cio, "dlq", dlqUsage, `Operates the dead-letter queue (stream ALUM_EVENTS_DLQ) across all tenants.
An entry is the event a consumer could not process, with the error, the number
of attempts and the consumer's name; SEQ is its id. 'replay' re-delivers the
event to the consumer that failed, and only to it, and removes the entry (a new
failure makes a new entry). 'purge' deletes entries.

Reaches the bus at --nats-url; with the embedded default it uses the running
'serve' through nats://127.0.0.1:4222, or opens the data directory itself when
nothing runs.`)
	consumer := fs.String("consumer", "", "only entries of this consumer, e.g. SEGMENTS_CONTACT_CONSUMER")
	subject := fs.String("subject", "", "only entries of this original subject, e.g. contact.created")
	tenantID := fs.String("tenant", "", "only entries whose event belongs to this tenant id")
	limit := fs.Int("limit", 50, "list at most this many entries")
	after := fs.Uint64("after", 0, "list entries after this SEQ (the cursor the previous page printed)")
	all := fs.Bool("all", false, "replay or purge every entry matching the filters")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	cfg, pos, err := loadConfig(cio, fs, args, config.ConnectFlags())
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("say what to do: list, show, replay or purge")
	}
	filter := bus.DLQFilter{Consumer: *consumer, Subject: *subject, TenantID: *tenantID, Limit: *limit, After: *after}
	verb := pos[0]
	var seq uint64
	switch {
	case verb == "list" && len(pos) == 1:
	case (verb == "replay" || verb == "purge") && *all && len(pos) == 1:
	case (verb == "show" || verb == "replay" || verb == "purge") && len(pos) == 2 && !*all:
		seq, err = strconv.ParseUint(pos[1], 10, 64)
		if err != nil || seq == 0 {
			return usageErrorf("SEQ must be the positive number 'dlq list' shows, got %q", pos[1])
		}
	case (verb == "replay" || verb == "purge") && len(pos) == 1:
		return usageErrorf("dlq %s needs the SEQ of one entry ('alumoutreach dlq list' shows them) or --all", verb)
	case (verb == "replay" || verb == "purge") && *all:
		return usageErrorf("dlq %s takes either SEQ or --all, not both", verb)
	case verb == "show" && len(pos) == 1:
		return usageErrorf("dlq show needs the SEQ of one entry ('alumoutreach dlq list' shows them)")
	case verb == "show" && *all:
		return usageErrorf("--all applies to replay and purge; dlq show takes one SEQ")
	case verb != "list" && verb != "show" && verb != "replay" && verb != "purge":
		return usageErrorf("unknown dlq command %q: use list, show, replay or purge", verb)
	default:
		return usageErrorf("too many arguments for dlq %s: %q", verb, pos[1:])
	}
	b, err := app.OpenToolBus(ctx, cfg, logger(cfg, cio.err))
	if err != nil {
		return err
	}
	defer b.Close()
	switch verb {
	case "list":
		items, next, err := b.ListDLQ(ctx, filter)
		if err != nil {
			return err
		}
		if *asJSON {
			if items == nil {
				items = []bus.DeadLetter{} // [] rather than null, as the API answers, so scripts can iterate
			}
			return writeJSON(cio, map[string]any{"items": items, "next": next})
		}
		tw := tabwriter.NewWriter(cio.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tWHEN\tCONSUMER\tSUBJECT\tTENANT\tATTEMPTS\tCODE\tERROR")
		for _, d := range items {
			when := ""
			if d.DeadLetteredAt != nil {
				when = d.DeadLetteredAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Seq, when, d.Consumer, d.Subject, d.TenantID,
				d.Error.Attempts, d.Error.Code, truncate(d.Error.Message, 80))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if next != 0 {
			fmt.Fprintf(cio.out, "\nmore entries: alumoutreach dlq list --after %d\n", next)
		}
		return nil
	case "show":
		d, err := b.GetDLQ(ctx, seq)
		if err != nil {
			return notFoundHint(err)
		}
		return writeJSON(cio, d)
	}
	op := func(d bus.DeadLetter) error {
		if verb == "replay" {
			_, err := b.ReplayDLQ(ctx, d.Seq)
			return err
		}
		return b.PurgeDLQ(ctx, d.Seq)
	}
	n := 1
	if *all {
		n, err = b.EachDLQ(ctx, filter, op)
	} else {
		err = op(bus.DeadLetter{Seq: seq})
	}
	if err != nil {
		return notFoundHint(err)
	}
	done := map[string]string{"replay": "replayed", "purge": "purged"}[verb]
	fmt.Fprintf(cio.out, "%s %d dead letter(s)\n", done, n)
	return nil
}

// notFoundHint tells the operator where valid SEQs come from: a SEQ from an
// old listing may have been replayed or purged since, or expired.
func notFoundHint(err error) error {
	if errors.Is(err, bus.ErrDeadLetterNotFound) {
		return fmt.Errorf("%w; 'alumoutreach dlq list' shows the entries there are", err)
	}
	return err
}

func writeJSON(cio cmdIO, v any) error {
	enc := json.NewEncoder(cio.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
