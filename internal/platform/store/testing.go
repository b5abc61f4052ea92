package store

import (
	"context"
	"testing"
)

// MustOpenForTest opens url (empty: SQLite in dataDir), applies the
// platform migrations and closes the database when t ends.
func MustOpenForTest(t testing.TB, url, dataDir string) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, Options{URL: url, DataDir: dataDir})
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx, "platform", Migrations()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
