package contacts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Import statuses.
const (
	ImportRunning   = "running"
	ImportCompleted = "completed"
	ImportFailed    = "failed"
	ImportCancelled = "cancelled"
)

// Import modes: create refuses a row whose email or phone exists; upsert
// updates that contact instead.
const (
	ModeCreate = "create"
	ModeUpsert = "upsert"
)

// maxImportErrors is how many refused rows an import keeps with their
// reason; it counts all of them.
const maxImportErrors = 10_000

// Import is a bulk import and its progress.
type Import struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Format string `json:"format"`
	Mode   string `json:"mode"`
	// Total is the number of records in the file, -1 until counted.
	Total int64 `json:"total"`
	// Done is the records processed so far, Created + Updated + Failed +
	// those an upsert found unchanged.
	Done       int64      `json:"done"`
	Created    int64      `json:"created"`
	Updated    int64      `json:"updated"`
	Failed     int64      `json:"failed"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	tenant     string
	spool      string
}

// ImportError is one refused row.
type ImportError struct {
	Row    int64  `json:"row"`
	Reason string `json:"reason"`
}

// ImportOptions tune the importer.
type ImportOptions struct {
	// SpoolDir holds uploads while they are imported (required for uploads).
	SpoolDir string
	// MaxBytes bounds one upload (default 1 GiB).
	MaxBytes int64
	// BatchSize is the rows committed per transaction (default 1000).
	BatchSize int
	// StaleAfter is how long a running import of another process may go
	// without progress before Resume declares it dead (default 10 min).
	StaleAfter time.Duration
}

// Importer runs bulk imports: uploads in the background from a spool file,
// files in place for the command line.
type Importer struct {
	svc  *Service
	opts ImportOptions
	log  *slog.Logger

	mu      sync.Mutex
	running map[string]context.CancelFunc // by import id
	wg      sync.WaitGroup
	ctx     context.Context
	stop    context.CancelFunc
}

// NewImporter returns an importer writing through svc.
func NewImporter(svc *Service, opts ImportOptions, log *slog.Logger) *Importer {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 1 << 30
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 10 * time.Minute
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Importer{svc: svc, opts: opts, log: log, running: map[string]context.CancelFunc{}, ctx: ctx, stop: stop}
}

func importInvalid(format string, args ...any) *fault.Error {
	return fault.New(fault.Invalid, "invalid_import", format, args...)
}

func checkImportArgs(format, mode string) error {
	if format != FormatCSV && format != FormatNDJSON {
		return importInvalid("unknown import format %q; send text/csv or application/x-ndjson", format)
	}
	if mode != ModeCreate && mode != ModeUpsert {
		return importInvalid("mode must be create or upsert (got %q)", mode)
	}
	return nil
}

// Start spools body to disk, checks its header, records the import and
// runs it in the background. The upload is never held in memory.
func (im *Importer) Start(ctx context.Context, tenant, format, mode string, body io.Reader) (*Import, error) {
	if err := checkImportArgs(format, mode); err != nil {
		return nil, err
	}
	if im.opts.SpoolDir == "" {
		return nil, errors.New("contacts importer: no spool directory configured")
	}
	if err := os.MkdirAll(im.opts.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("create import spool directory: %w", err)
	}
	imp := im.newImport(tenant, format, mode)
	imp.spool = filepath.Join(im.opts.SpoolDir, imp.ID+"."+format)
	if err := im.spool(body, imp.spool); err != nil {
		os.Remove(imp.spool)
		return nil, err
	}
	total, err := im.prepare(imp)
	if err != nil {
		os.Remove(imp.spool)
		return nil, err
	}
	imp.Total = total
	if err := im.insert(ctx, imp); err != nil {
		os.Remove(imp.spool)
		return nil, err
	}
	// The caller gets the import as it starts; the run goes on with its
	// own copy, which Get reads from the database.
	started := *imp
	im.launch(imp, 0)
	return &started, nil
}

func (im *Importer) newImport(tenant, format, mode string) *Import {
	now := im.svc.clock()
	return &Import{ID: event.NewID(), Status: ImportRunning, Format: format, Mode: mode, Total: -1,
		CreatedAt: now, UpdatedAt: now, tenant: tenant}
}

func (im *Importer) spool(body io.Reader, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create import spool: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(body, im.opts.MaxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("receive import upload: %w", err)
	}
	if n > im.opts.MaxBytes {
		return fault.New(fault.TooLarge, "import_too_large", "the import is larger than %d bytes; split it into several files", im.opts.MaxBytes)
	}
	return nil
}

// prepare checks the file's header and counts its records.
func (im *Importer) prepare(imp *Import) (int64, error) {
	f, err := os.Open(imp.spool)
	if err != nil {
		return 0, fmt.Errorf("open import file: %w", err)
	}
	defer f.Close()
	if _, err := newRowReader(imp.Format, f, imp.ID, imp.CreatedAt); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("rewind import file: %w", err)
	}
	return countRows(imp.Format, f)
}

func (im *Importer) insert(ctx context.Context, imp *Import) error {
	_, err := im.svc.db.Writer().ExecContext(ctx, `INSERT INTO contact_imports
		(tenant_id, id, status, format, mode, total, spool, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		imp.tenant, imp.ID, imp.Status, imp.Format, imp.Mode, imp.Total, imp.spool, imp.CreatedAt.UnixMilli(), imp.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("record import: %w", err)
	}
	return nil
}

// launch runs imp from its spool in the background, skipping the first
// skip records (already committed).
func (im *Importer) launch(imp *Import, skip int64) {
	ctx, cancel := context.WithCancel(im.ctx)
	im.mu.Lock()
	im.running[imp.ID] = cancel
	im.mu.Unlock()
	im.wg.Add(1)
	go func() {
		defer im.wg.Done()
		defer func() {
			im.mu.Lock()
			delete(im.running, imp.ID)
			im.mu.Unlock()
			cancel()
		}()
		f, err := os.Open(imp.spool)
		if err == nil {
			err = im.process(ctx, imp, f, skip, nil)
			f.Close()
		}
		if err != nil && ctx.Err() != nil {
			// Cancelled or stopped mid-batch: the database error that
			// surfaced ("statement is closed") is the cancellation's doing.
			err = ctx.Err()
		}
		im.finish(imp, err)
	}()
}

// finish records how a background import ended; an import stopped by
// shutdown stays running, to be resumed.
func (im *Importer) finish(imp *Import, err error) {
	if err != nil && im.ctx.Err() != nil {
		im.log.Info("import paused by shutdown; it resumes at the next start", "import", imp.ID, "done", imp.Done)
		return
	}
	if err := im.end(imp, err); err != nil {
		im.log.Error("record import end", "import", imp.ID, "err", err)
	}
	if imp.Status != ImportRunning {
		os.Remove(imp.spool)
	}
}

// end stores imp's final status from the error that ended it.
func (im *Importer) end(imp *Import, err error) error {
	now := im.svc.clock()
	imp.Status = ImportCompleted
	switch {
	case errors.Is(err, context.Canceled):
		imp.Status = ImportCancelled
	case err != nil:
		imp.Status, imp.Error = ImportFailed, err.Error()
		if fe, ok := fault.As(err); ok {
			imp.Error = fe.Message
		}
	}
	imp.UpdatedAt, imp.FinishedAt = now, &now
	im.log.Info("import finished", "import", imp.ID, "status", imp.Status, "done", imp.Done, "created", imp.Created,
		"updated", imp.Updated, "failed", imp.Failed, "err", imp.Error)
	_, dbErr := im.svc.db.Writer().ExecContext(context.WithoutCancel(im.ctx), `UPDATE contact_imports SET status = $3, error = $4,
		updated_at = $5, finished_at = $5 WHERE tenant_id = $1 AND id = $2 AND status = 'running'`,
		imp.tenant, imp.ID, imp.Status, imp.Error, now.UnixMilli())
	return dbErr
}

// Run imports the file at path synchronously (the command line), calling
// progress after every committed batch.
func (im *Importer) Run(ctx context.Context, tenant, format, mode, path string, progress func(Import)) (*Import, error) {
	if err := checkImportArgs(format, mode); err != nil {
		return nil, err
	}
	imp := im.newImport(tenant, format, mode)
	imp.spool = path
	total, err := im.prepare(imp)
	if err != nil {
		return nil, err
	}
	imp.Total = total
	imp.spool = "" // the user's file: never resumed by a server, never removed
	if err := im.insert(ctx, imp); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open import file: %w", err)
	}
	defer f.Close()
	err = im.process(ctx, imp, f, 0, progress)
	if endErr := im.end(imp, err); endErr != nil && err == nil {
		err = endErr
	}
	return imp, err
}

type importRow struct {
	row int64
	in  Input
	err error
}

// process reads r from the start, skips the records already committed,
// and imports the rest in batches, each batch with its progress in one
// transaction.
func (im *Importer) process(ctx context.Context, imp *Import, r io.Reader, skip int64, progress func(Import)) error {
	rows, err := newRowReader(imp.Format, r, imp.ID, imp.CreatedAt)
	if err != nil {
		return err
	}
	batch := make([]importRow, 0, im.opts.BatchSize)
	var seen int64
	for {
		row, in, rowErr, err := rows.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(batch) > 0 {
				if ferr := im.commit(ctx, imp, batch); ferr != nil {
					return ferr
				}
			}
			return err
		}
		if seen++; seen <= skip {
			continue
		}
		batch = append(batch, importRow{row: row, in: in, err: rowErr})
		if len(batch) == cap(batch) {
			if err := im.commit(ctx, imp, batch); err != nil {
				return err
			}
			batch = batch[:0]
			if progress != nil {
				progress(*imp)
			}
		}
	}
	if len(batch) > 0 {
		if err := im.commit(ctx, imp, batch); err != nil {
			return err
		}
	}
	if progress != nil {
		progress(*imp)
	}
	return nil
}

// batchCounts is what one batch adds to an import's progress.
type batchCounts struct {
	created, updated, failed int64
	errors                   []ImportError
}

// commit imports batch in one transaction. When the transaction fails as a
// whole (on PostgreSQL a row racing another writer aborts it), each row is
// retried alone, so one row cannot take its batch down.
func (im *Importer) commit(ctx context.Context, imp *Import, batch []importRow) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	counts, err := im.commitRows(ctx, imp, batch)
	if err != nil && ctx.Err() == nil {
		im.log.Warn("import batch failed; retrying its rows one by one", "import", imp.ID, "rows", len(batch), "err", err)
		counts = batchCounts{}
		for i := range batch {
			c, err := im.commitRows(ctx, imp, batch[i:i+1])
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c, err = im.commitRows(ctx, imp, []importRow{{row: batch[i].row, err: err}})
				if err != nil {
					return err
				}
			}
			counts.add(c)
		}
	} else if err != nil {
		return err
	}
	imp.Done += int64(len(batch))
	imp.Created += counts.created
	imp.Updated += counts.updated
	imp.Failed += counts.failed
	imp.UpdatedAt = im.svc.clock()
	return nil
}

func (c *batchCounts) add(o batchCounts) {
	c.created += o.created
	c.updated += o.updated
	c.failed += o.failed
}

// commitRows imports rows and records the progress in one transaction.
func (im *Importer) commitRows(ctx context.Context, imp *Import, rows []importRow) (batchCounts, error) {
	var counts batchCounts
	err := im.svc.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		counts = batchCounts{}
		// Each statement is prepared once per batch, and the batch's events
		// go to the outbox in one write: parsing the same SQL for every row
		// cost a fifth of an import.
		stmts := store.NewStmtCache(tx)
		defer stmts.Close()
		var envs []event.Envelope
		buffer := func(e ...event.Envelope) error {
			envs = append(envs, e...)
			return nil
		}
		for _, r := range rows {
			err := r.err // the row does not parse
			if err == nil {
				err = im.importRow(ctx, stmts, buffer, imp, r, &counts)
				if _, ok := fault.As(err); err != nil && !ok {
					return err // a database problem, not the row's fault
				}
			}
			if err != nil {
				counts.failed++
				if imp.Failed+counts.failed <= maxImportErrors {
					counts.errors = append(counts.errors, ImportError{Row: r.row, Reason: reason(err)})
				}
			}
		}
		if err := emit(envs...); err != nil {
			return err
		}
		return im.saveProgress(ctx, tx, imp, int64(len(rows)), counts)
	})
	return counts, err
}

func reason(err error) string {
	if fe, ok := fault.As(err); ok {
		return fe.Message
	}
	return err.Error()
}

// importRow writes one row; each contact's events start a correlation of
// their own, as a contact created through the API would.
func (im *Importer) importRow(ctx context.Context, tx querier, emit outbox.Emit, imp *Import, r importRow, counts *batchCounts) error {
	ctx = event.WithCorrelationID(ctx, event.NewID())
	if imp.Mode == ModeCreate {
		if _, err := im.svc.create(ctx, tx, emit, imp.tenant, r.in); err != nil {
			return err
		}
		counts.created++
		return nil
	}
	_, created, changed, err := im.svc.upsert(ctx, tx, emit, imp.tenant, r.in)
	switch {
	case err != nil:
		return err
	case created:
		counts.created++
	case changed:
		counts.updated++
	}
	return nil
}

func (im *Importer) saveProgress(ctx context.Context, tx *sql.Tx, imp *Import, rows int64, c batchCounts) error {
	_, err := tx.ExecContext(ctx, `UPDATE contact_imports SET done = done + $3, created = created + $4, updated = updated + $5,
		failed = failed + $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2`,
		imp.tenant, imp.ID, rows, c.created, c.updated, c.failed, im.svc.clock().UnixMilli())
	if err != nil {
		return fmt.Errorf("record import progress: %w", err)
	}
	for _, e := range c.errors {
		if _, err := tx.ExecContext(ctx, `INSERT INTO contact_import_errors (tenant_id, import_id, row_num, reason) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, imp.tenant, imp.ID, e.Row, e.Reason); err != nil {
			return fmt.Errorf("record import error: %w", err)
		}
	}
	return nil
}

// Get returns one import of the tenant.
func (im *Importer) Get(ctx context.Context, tenant, id string) (*Import, error) {
	imps, err := im.query(ctx, `WHERE tenant_id = $1 AND id = $2`, tenant, id)
	if err != nil {
		return nil, err
	}
	if len(imps) == 0 {
		return nil, fault.New(fault.NotFound, "import_not_found", "no import %q in this tenant", id)
	}
	return imps[0], nil
}

func (im *Importer) query(ctx context.Context, where string, args ...any) ([]*Import, error) {
	rows, err := im.svc.db.Reader().QueryContext(ctx, `SELECT tenant_id, id, status, format, mode, total, done, created, updated, failed,
		error, spool, created_at, updated_at, finished_at FROM contact_imports `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read imports: %w", err)
	}
	defer rows.Close()
	var out []*Import
	for rows.Next() {
		var (
			imp              Import
			created, updated int64
			finished         sql.NullInt64
		)
		if err := rows.Scan(&imp.tenant, &imp.ID, &imp.Status, &imp.Format, &imp.Mode, &imp.Total, &imp.Done, &imp.Created,
			&imp.Updated, &imp.Failed, &imp.Error, &imp.spool, &created, &updated, &finished); err != nil {
			return nil, fmt.Errorf("read imports: %w", err)
		}
		imp.CreatedAt, imp.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		if finished.Valid {
			t := time.UnixMilli(finished.Int64).UTC()
			imp.FinishedAt = &t
		}
		out = append(out, &imp)
	}
	return out, rows.Err()
}

// Errors returns up to limit refused rows of an import after row number after.
func (im *Importer) Errors(ctx context.Context, tenant, id string, after int64, limit int) ([]ImportError, error) {
	if _, err := im.Get(ctx, tenant, id); err != nil {
		return nil, err
	}
	rows, err := im.svc.db.Reader().QueryContext(ctx, `SELECT row_num, reason FROM contact_import_errors
		WHERE tenant_id = $1 AND import_id = $2 AND row_num > $3 ORDER BY row_num LIMIT $4`, tenant, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read import errors: %w", err)
	}
	defer rows.Close()
	var out []ImportError
	for rows.Next() {
		var e ImportError
		if err := rows.Scan(&e.Row, &e.Reason); err != nil {
			return nil, fmt.Errorf("read import errors: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Cancel stops a running import of this process; the rows committed stay.
func (im *Importer) Cancel(ctx context.Context, tenant, id string) (*Import, error) {
	imp, err := im.Get(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if imp.Status != ImportRunning {
		return nil, fault.New(fault.Conflict, "import_finished", "import %s has already %s", id, imp.Status)
	}
	im.mu.Lock()
	cancel, ok := im.running[id]
	im.mu.Unlock()
	if !ok {
		return nil, fault.New(fault.Conflict, "import_elsewhere", "import %s runs in another process (a command-line import or another instance); stop it there", id)
	}
	cancel()
	im.wait(id)
	return im.Get(ctx, tenant, id)
}

// wait returns once import id no longer runs here.
func (im *Importer) wait(id string) {
	for {
		im.mu.Lock()
		_, ok := im.running[id]
		im.mu.Unlock()
		if !ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Resume continues the uploads this process was importing when it last
// stopped, from the last committed row, and fails imports whose process
// died without leaving their file here.
func (im *Importer) Resume(ctx context.Context) error {
	imps, err := im.query(ctx, `WHERE status = $1`, ImportRunning)
	if err != nil {
		return err
	}
	for _, imp := range imps {
		if imp.spool != "" && filepath.Dir(imp.spool) == filepath.Clean(im.opts.SpoolDir) {
			if _, err := os.Stat(imp.spool); err == nil {
				im.log.Info("resuming import", "import", imp.ID, "done", imp.Done, "total", imp.Total)
				im.launch(imp, imp.Done)
				continue
			}
		}
		if im.svc.clock().Sub(imp.UpdatedAt) > im.opts.StaleAfter {
			if err := im.end(imp, errors.New("interrupted, and its file is gone; import the rows after the last one done again (upsert mode makes that safe)")); err != nil {
				return err
			}
		}
	}
	return nil
}

// Stop pauses background imports (they resume at the next Resume) and
// waits for them.
func (im *Importer) Stop() {
	im.stop()
	im.wg.Wait()
}
