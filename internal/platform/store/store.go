package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Kind names a database engine.
type Kind string

const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// ErrNotFound is returned by lookups that match no row.
var ErrNotFound = errors.New("not found")

// Options says which database to open.
type Options struct {
	// URL is a postgres:// (or postgresql://) URL, a sqlite: path, or empty
	// for SQLite in DataDir.
	URL string
	// DataDir holds the SQLite file when URL is empty.
	DataDir string
	// FileName is the SQLite file name inside DataDir (default alumoutreach.db).
	FileName string
	// ReadConns caps the SQLite reader pool (default 2 x GOMAXPROCS).
	ReadConns int
}

// DB is an open database: a writer for transactions and a reader pool.
// On PostgreSQL both are the same pool.
type DB struct {
	kind   Kind
	url    string
	writer *sql.DB
	reader *sql.DB
	ckpt   *checkpointer // SQLite only

	closeOnce sync.Once
	closeErr  error
}

// Open opens and pings the database that opts names.
func Open(ctx context.Context, opts Options) (*DB, error) {
	u := strings.TrimSpace(opts.URL)
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return openPostgres(ctx, u)
	case u == "" || strings.HasPrefix(u, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(u, "sqlite://"), "sqlite:")
		if path == "" {
			name := opts.FileName
			if name == "" {
				name = "alumoutreach.db"
			}
			path = filepath.Join(opts.DataDir, name)
		}
		return openSQLite(ctx, path, opts.ReadConns)
	default:
		return nil, fmt.Errorf("database url %q: use postgres://user:pass@host:5432/db, sqlite:/path/to/file.db, or leave it empty for SQLite in the data directory", redact(u))
	}
}

func openSQLite(ctx context.Context, path string, readConns int) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory %s: %w", dir, err)
		}
	}
	// journal_size_limit shrinks a WAL that a long burst grew once it
	// starts over.
	//
	// Page caches are small on purpose. This SQLite build keeps one page
	// cache for the whole process (SQLITE_ENABLE_MEMORY_MANAGEMENT: every
	// connection to every file shares one LRU list), and cache_size only
	// sets a connection's share of that common budget. Once the budget is
	// full, a connection below its share adds pages instead of recycling the
	// oldest, and every page unpinned while the total is over the budget is
	// dropped: the hot pages just used, such as the analytics writer's
	// B-tree roots, which it then read again on every statement (~4% of
	// the event path's CPU, docs/benchmarks.md). Readers start over at each
	// read after a write anyway. Measured: 1 MB for a writer (room for the
	// dirty pages of a large transaction) and 256 KB for the others send as
	// fast as 8 MB and 2 MB did, and the process holds 55-70 MB less; the
	// kernel's page cache serves the reads.
	common := []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "foreign_keys(ON)", "journal_size_limit(67108864)"}
	dsn := func(extra url.Values, pragmas ...string) string {
		for _, p := range append(common[:len(common):len(common)], pragmas...) {
			extra.Add("_pragma", p)
		}
		return "file:" + path + "?" + extra.Encode()
	}
	// Checkpoints are the checkpointer's job (checkpoint.go), not the writer's.
	writer := sql.OpenDB(newReusingConnector(dsn(url.Values{"_txlock": {"immediate"}}, "cache_size(-1024)", "wal_autocheckpoint(0)")))
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ckptConn := sql.OpenDB(newReusingConnector(dsn(url.Values{}, "cache_size(-256)")))
	ckptConn.SetMaxOpenConns(1)
	reader := sql.OpenDB(newReusingConnector(dsn(url.Values{}, "cache_size(-256)", "query_only(true)")))
	if readConns <= 0 {
		readConns = 2 * runtime.GOMAXPROCS(0)
	}
	reader.SetMaxOpenConns(readConns)
	reader.SetMaxIdleConns(readConns)
	reader.SetConnMaxIdleTime(0)
	return &DB{kind: SQLite, url: "sqlite:" + path, writer: writer, reader: reader, ckpt: startCheckpointer(ckptConn)}, nil
}

func openPostgres(ctx context.Context, u string) (*DB, error) {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", redact(u), err)
	}
	db.SetMaxOpenConns(4 * runtime.GOMAXPROCS(0))
	db.SetMaxIdleConns(4 * runtime.GOMAXPROCS(0))
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w (is the server running and the URL right?)", redact(u), err)
	}
	return &DB{kind: Postgres, url: u, writer: db, reader: db}, nil
}

// Kind reports the engine.
func (db *DB) Kind() Kind { return db.kind }

// URL returns the URL the database was opened with (credentials included:
// do not log it; use Redacted).
func (db *DB) URL() string { return db.url }

// Redacted returns the URL with any password masked, for logs and errors.
func (db *DB) Redacted() string { return redact(db.url) }

// Reader is the pool for queries outside transactions.
func (db *DB) Reader() *sql.DB { return db.reader }

// Writer is the connection (SQLite) or pool (PostgreSQL) that writes.
func (db *DB) Writer() *sql.DB { return db.writer }

// Ping checks that the database answers; /readyz uses it.
func (db *DB) Ping(ctx context.Context) error { return db.reader.PingContext(ctx) }

// Close closes both pools and, on SQLite, checkpoints the whole WAL into
// the database file. Closing again returns the first result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		err := db.writer.Close()
		if db.reader != db.writer {
			err = errors.Join(err, db.reader.Close())
		}
		if db.ckpt != nil {
			err = errors.Join(err, db.ckpt.close())
		}
		db.closeErr = err
	})
	return db.closeErr
}

// InTx runs fn in a transaction on the writer, committing when fn returns
// nil and rolling back otherwise (also when fn panics).
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either engine.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	return false
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
