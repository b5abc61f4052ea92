package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/contacts"
	"github.com/alumoutreach/alumoutreach/internal/platform/tenant"
)

const contactsUsage = `alumoutreach contacts import FILE --tenant TENANT [--mode create|upsert] [--format csv|ndjson] [flags]`

func runContacts(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlags(cio, "contacts", contactsUsage, `Imports contacts from a CSV or NDJSON file straight into the configured database
(works whether or not 'serve' is running; the server publishes the contacts'
events, at once or when it next starts). The file is streamed, never read
whole, and a progress bar shows rows done, failed and the rate.

CSV: the first row names the columns: email, phone, firstName, lastName,
locale, timeZone, tags (separated by ';'), source, attributes.NAME (typed:
numbers and true/false become such; attributes.NAME:string keeps text) and
consent.email|sms|whatsapp (yes/no). NDJSON: one contact per line, as the
API's POST /api/v1/contacts takes it. Bad rows are reported with their row
number and do not stop the others.

--mode create refuses a row whose email or phone exists; upsert updates that
contact instead, so a re-run of the same file is safe.`)
	tenantRef := fs.String("tenant", "", "the tenant to import into: its id or its name (required)")
	mode := fs.String("mode", contacts.ModeCreate, "create or upsert")
	format := fs.String("format", "", "csv or ndjson (default: from the file's extension)")
	cfg, pos, err := loadConfig(cio, fs, args, config.ConnectFlags())
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "import" {
		return usageErrorf("say: contacts import FILE --tenant TENANT")
	}
	path := pos[1]
	if *tenantRef == "" {
		return usageErrorf("--tenant is required: the id or name of the tenant the contacts belong to (see 'alumoutreach tenant list')")
	}
	if *format == "" {
		if *format, err = formatOf(path); err != nil {
			return usageErrorf("%v", err)
		}
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("import file: %w", err)
	}
	db, err := app.OpenDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	log := logger(cfg, cio.err)
	tenantID, err := resolveTenant(ctx, tenant.New(db, log), *tenantRef)
	if err != nil {
		return err
	}
	bar := newProgressBar(cio.err, isTerminal(cio.err))
	imp, err := app.ContactImporter(db, cfg, log).Run(ctx, tenantID, *format, *mode, path, bar.update)
	bar.finish()
	if imp != nil {
		fmt.Fprintf(cio.out, "import %s %s: %d rows, %d created, %d updated, %d failed\n",
			imp.ID, imp.Status, imp.Done, imp.Created, imp.Updated, imp.Failed)
		if imp.Failed > 0 {
			fmt.Fprintf(cio.out, "the refused rows and why: GET /api/v1/contacts/imports/%s/errors\n", imp.ID)
		}
	}
	return err
}

func formatOf(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return contacts.FormatCSV, nil
	case ".ndjson", ".jsonl":
		return contacts.FormatNDJSON, nil
	}
	return "", fmt.Errorf("cannot tell the format of %q from its extension; pass --format csv or --format ndjson", path)
}

// resolveTenant accepts a tenant id or a unique name.
func resolveTenant(ctx context.Context, svc *tenant.Service, ref string) (string, error) {
	if t, err := svc.Get(ctx, ref); err == nil {
		return t.ID, nil
	}
	ts, err := svc.List(ctx)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, t := range ts {
		if t.Name == ref {
			ids = append(ids, t.ID)
		}
	}
	switch len(ids) {
	case 1:
		return ids[0], nil
	case 0:
		return "", errors.New("no tenant has the id or name " + ref + "; see 'alumoutreach tenant list'")
	}
	return "", fmt.Errorf("%d tenants are named %q; pass the id instead (%s)", len(ids), ref, strings.Join(ids, ", "))
}

// progressBar draws import progress on a terminal, redrawing one line; on
// anything else (a log file, CI) it prints a line every few seconds.
type progressBar struct {
	w       io.Writer
	tty     bool
	start   time.Time
	last    time.Time
	printed bool
}

func newProgressBar(w io.Writer, tty bool) *progressBar {
	return &progressBar{w: w, tty: tty, start: time.Now()}
}

func (p *progressBar) update(imp contacts.Import) {
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if p.printed && now.Sub(p.last) < every && imp.Done != imp.Total {
		return
	}
	p.last, p.printed = now, true
	rate := float64(imp.Done) / max(now.Sub(p.start).Seconds(), 1e-3)
	line := fmt.Sprintf("%d rows  %.0f rows/s  failed %d", imp.Done, rate, imp.Failed)
	if imp.Total > 0 {
		frac := min(float64(imp.Done)/float64(imp.Total), 1)
		const width = 30
		filled := int(frac * width)
		line = fmt.Sprintf("[%s%s] %3.0f%%  %d/%d rows  %.0f rows/s  failed %d",
			strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, imp.Done, imp.Total, rate, imp.Failed)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\033[K", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progressBar) finish() {
	if p.tty && p.printed {
		fmt.Fprintln(p.w)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
