package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

func TestMigrateAppliesOnceInOrderWithDialectFiles(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fsys := fstest.MapFS{
			"001_items.sql":         {Data: []byte(`CREATE TABLE items (id {{SERIAL_PK}}, attrs {{JSON}} NOT NULL, body {{BLOB}})`)},
			"002_seed.sqlite.sql":   {Data: []byte(`INSERT INTO items (attrs) VALUES ('{"engine":"sqlite"}')`)},
			"002_seed.postgres.sql": {Data: []byte(`INSERT INTO items (attrs) VALUES ('{"engine":"postgres"}')`)},
			"003_more.sql":          {Data: []byte(`INSERT INTO items (attrs) VALUES ('{"engine":"both"}')`)},
			"README.txt":            {Data: []byte(`not a migration`)},
		}
		for range 2 { // the second run must change nothing
			if err := db.Migrate(ctx, "items", fsys); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := db.Reader().QueryContext(ctx, `SELECT attrs ->> 'engine' FROM items ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		want := string(db.Kind()) + ",both"
		if strings.Join(got, ",") != want {
			t.Fatalf("rows %v, want %s", got, want)
		}
	})
}

func TestMigrateRollsBackAFailingFile(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		bad := fstest.MapFS{
			"001_ok.sql":     {Data: []byte(`CREATE TABLE ok_table (id TEXT PRIMARY KEY)`)},
			"002_broken.sql": {Data: []byte(`CREATE TABLE half (id TEXT); INSERT INTO nowhere VALUES (1)`)},
		}
		if err := db.Migrate(ctx, "bad", bad); err == nil || !strings.Contains(err.Error(), "002_broken.sql") {
			t.Fatalf("Migrate: %v, want an error naming 002_broken.sql", err)
		}
		var n int
		if err := db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE module = 'bad'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d migrations recorded (%v), want only 001", n, err)
		}
	})
}

func TestBadMigrationNames(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	err := db.Migrate(context.Background(), "x", fstest.MapFS{"first.sql": {Data: []byte(`SELECT 1`)}})
	if err == nil || !strings.Contains(err.Error(), "NNN_description.sql") {
		t.Fatalf("got %v", err)
	}
}

func TestMarkProcessedAndUniqueViolation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var firsts []bool
		for range 2 {
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				first, err := store.MarkProcessed(ctx, tx, "C", "e1")
				firsts = append(firsts, first)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !firsts[0] || firsts[1] {
			t.Fatalf("MarkProcessed firsts = %v, want [true false]", firsts)
		}
		// A rolled-back transaction leaves no record: the effect will be retried.
		_ = db.InTx(ctx, func(tx *sql.Tx) error {
			_, _ = store.MarkProcessed(ctx, tx, "C", "e2")
			return errors.New("handler failed")
		})
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			first, err := store.MarkProcessed(ctx, tx, "C", "e2")
			if !first {
				t.Error("rolled-back record survived")
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Writer().ExecContext(ctx, `INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('C', 'e1', 0)`)
		if !store.IsUniqueViolation(err) {
			t.Fatalf("IsUniqueViolation(%v) = false", err)
		}
		if store.IsUniqueViolation(errors.New("other")) {
			t.Fatal("plain error reported as unique violation")
		}
	})
}

func TestOpenRefusesUnknownURL(t *testing.T) {
	t.Parallel()
	_, err := store.Open(context.Background(), store.Options{URL: "mysql://u:secret@h/db"})
	if err == nil || !strings.Contains(err.Error(), "postgres://") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("got %v; want a fix-it message without the password", err)
	}
}

func TestPruneProcessedKeepsRecentRecords(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Writer().ExecContext(ctx, `INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('C', 'old', 0)`); err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *sql.Tx) error { _, err := store.MarkProcessed(ctx, tx, "C", "new"); return err }); err != nil {
			t.Fatal(err)
		}
		n, err := store.PruneProcessed(ctx, db, time.Hour)
		if err != nil || n != 1 {
			t.Fatalf("pruned %d (%v), want the one old record", n, err)
		}
		var left string
		if err := db.Reader().QueryRowContext(ctx, `SELECT event_id FROM processed_events`).Scan(&left); err != nil || left != "new" {
			t.Fatalf("left %q (%v)", left, err)
		}
	})
}

func TestWhereNumbersParametersInOrder(t *testing.T) {
	var w store.Where
	if w.String() != "" || len(w.Args()) != 0 {
		t.Fatalf("empty Where: %q %v", w.String(), w.Args())
	}
	w.And("tenant_id = ?", "t1")
	w.AndIf("status = ?", "")
	w.AndIf("workflow_id = ?", "wf")
	w.And("(channel, address) > (?, ?)", "email", "a@example.org")
	want := "WHERE tenant_id = $1 AND workflow_id = $2 AND (channel, address) > ($3, $4)"
	if w.String() != want {
		t.Errorf("clause %q, want %q", w.String(), want)
	}
	if got := fmt.Sprint(w.Args()); got != "[t1 wf email a@example.org]" {
		t.Errorf("args %s", got)
	}
}
