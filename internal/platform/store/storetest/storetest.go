// Package storetest opens real databases for tests: SQLite in a temporary
// directory always, and PostgreSQL when ALUM_TEST_POSTGRES_URL is set (each
// test in a schema of its own, dropped afterwards).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// PostgresEnv names the variable holding the PostgreSQL server's URL.
const PostgresEnv = "ALUM_TEST_POSTGRES_URL"

// Each runs fn once per available engine, as subtests named after it.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, kind := range Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			fn(t, Open(t, kind))
		})
	}
}

// Kinds lists the engines available to this test run.
func Kinds() []store.Kind {
	if os.Getenv(PostgresEnv) != "" {
		return []store.Kind{store.SQLite, store.Postgres}
	}
	return []store.Kind{store.SQLite}
}

// Open returns a fresh, empty database of kind, closed (and on PostgreSQL
// dropped) when the test ends. A PostgreSQL test is skipped when the server
// URL is not set.
func Open(t testing.TB, kind store.Kind) *store.DB {
	t.Helper()
	return OpenURL(t, URL(t, kind))
}

// OpenURL opens url with the platform migrations applied and closes it
// when the test ends.
func OpenURL(t testing.TB, url string) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: url})
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx, "platform", store.Migrations()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// URL returns a database URL of kind for one test: an SQLite file in a
// temporary directory, or a PostgreSQL URL whose search_path is a new schema.
func URL(t testing.TB, kind store.Kind) string {
	t.Helper()
	if kind == store.SQLite {
		return "sqlite:" + t.TempDir() + "/test.db"
	}
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("%s is not set; PostgreSQL tests skipped", PostgresEnv)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
