package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// The writer never checkpoints (wal_autocheckpoint(0)): without the
// background checkpointer the WAL would hold every byte ever written.
func TestCheckpointerKeepsTheWALBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(dir, "alumoutreach.db-wal")
	write := func(size int) {
		t.Helper()
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO blobs (body) VALUES ($1)`, make([]byte, size))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Writer().Exec(`CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)`); err != nil {
		t.Fatal(err)
	}
	const written = 96 << 20 // beyond journal_size_limit (64 MiB)
	for range written >> 20 {
		write(1 << 20)
		time.Sleep(5 * time.Millisecond) // let checkpoints catch up, as gaps between bursts do
	}
	// Once a checkpoint has copied every frame, the next write starts the
	// WAL over and cuts the file down to the limit.
	deadline := time.Now().Add(10 * time.Second)
	for {
		write(10)
		fi, err := os.Stat(wal)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() <= 64<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WAL is %d MiB after writing %d MiB: nothing checkpoints it", fi.Size()>>20, written>>20)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Close checkpoints everything: the database file alone has the data.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(wal); err == nil && fi.Size() > 0 {
		t.Errorf("WAL still holds %d bytes after Close", fi.Size())
	}
	db, err = store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM blobs`).Scan(&n); err != nil || n < written>>20 {
		t.Fatalf("%d rows after reopening (%v), want at least %d", n, err, written>>20)
	}
}
