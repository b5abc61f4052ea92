package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"path/filepath"
	"testing"
)

func openReusingConn(t *testing.T) *reusingConn {
	t.Helper()
	c, err := newReusingConnector("file:" + filepath.Join(t.TempDir(), "reuse.db")).Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*reusingConn)
}

func prepare(t *testing.T, c *reusingConn, query string) driver.Stmt {
	t.Helper()
	s, err := c.PrepareContext(context.Background(), query)
	if err != nil {
		t.Fatalf("prepare %q: %v", query, err)
	}
	return s
}

func TestConnReusesClosedStatementsOnly(t *testing.T) {
	t.Parallel()
	c := openReusingConn(t)
	const q = `SELECT 1`
	first := prepare(t, c, q)
	second := prepare(t, c, q)
	if first == second {
		t.Fatal("a statement still in use was handed out again")
	}
	second.Close() // not the cached copy: finalized
	first.Close()
	if again := prepare(t, c, q); again != first {
		t.Fatal("a closed statement was prepared anew instead of reused")
	} else {
		again.Close()
	}
	if other := prepare(t, c, `SELECT 2`); other == first {
		t.Fatal("another query got the cached statement")
	} else {
		other.Close()
	}
}

func TestConnEvictsLeastRecentlyUsedStatements(t *testing.T) {
	t.Parallel()
	c := openReusingConn(t)
	keep := prepare(t, c, `SELECT 0`)
	keep.Close()
	for i := 1; i <= reusedStmtsPerConn; i++ {
		prepare(t, c, `SELECT 0`).Close() // used again: stays at the front
		prepare(t, c, fmt.Sprintf(`SELECT %d`, i)).Close()
	}
	if c.lru.Len() != reusedStmtsPerConn || len(c.byQuery) != reusedStmtsPerConn {
		t.Fatalf("cache holds %d (%d by query), want %d", c.lru.Len(), len(c.byQuery), reusedStmtsPerConn)
	}
	if _, ok := c.byQuery[`SELECT 1`]; ok {
		t.Error("the least recently used statement was kept")
	}
	if s := prepare(t, c, `SELECT 0`); s != keep {
		t.Error("a recently used statement was evicted")
	}
}

// Through database/sql, as the application uses it: the same SQL run again
// while its rows are still open, a statement kept across a schema change,
// and errors that leave the statement reusable.
func TestReusedStatementsGiveCorrectResults(t *testing.T) {
	t.Parallel()
	db := sql.OpenDB(newReusingConnector("file:" + filepath.Join(t.TempDir(), "reuse.db")))
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`)
	const insert = `INSERT INTO items (id, name) VALUES ($1, $2)`
	for i := 1; i <= 3; i++ {
		mustExec(insert, i, fmt.Sprintf("item %d", i))
	}
	if _, err := db.ExecContext(ctx, insert, 4, "item 1"); err == nil {
		t.Fatal("a duplicate name was inserted")
	}
	mustExec(insert, 4, "item 4") // the statement that failed runs again

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const byID = `SELECT name FROM items WHERE id >= $1 ORDER BY id`
	outer, err := tx.QueryContext(ctx, byID, 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for outer.Next() {
		var name string
		if err := outer.Scan(&name); err != nil {
			t.Fatal(err)
		}
		var inner string // the same SQL while the outer rows are open
		if err := tx.QueryRowContext(ctx, byID, 4).Scan(&inner); err != nil || inner != "item 4" {
			t.Fatalf("nested query = %q, %v", inner, err)
		}
		names = append(names, name)
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names) != "[item 1 item 2 item 3 item 4]" {
		t.Fatalf("rows = %v", names)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	mustExec(`ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'none'`)
	var name string
	if err := db.QueryRowContext(ctx, byID, 2).Scan(&name); err != nil || name != "item 2" {
		t.Fatalf("after a schema change: %q, %v", name, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE note = 'none'`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("new column: %d, %v", n, err)
	}
}

func TestSQLiteConnectionSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pragma := func(pool *sql.DB, name string) string {
		t.Helper()
		var v string
		if err := pool.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for _, c := range []struct {
		pool       *sql.DB
		name, want string
	}{
		{db.Writer(), "cache_size", "-1024"},
		{db.Writer(), "wal_autocheckpoint", "0"},
		{db.Writer(), "journal_mode", "wal"},
		{db.Writer(), "foreign_keys", "1"},
		{db.Reader(), "cache_size", "-256"},
		{db.Reader(), "query_only", "1"},
		{db.Reader(), "wal_autocheckpoint", "1000"},
	} {
		if got := pragma(c.pool, c.name); got != c.want {
			t.Errorf("%s = %s, want %s", c.name, got, c.want)
		}
	}
	if _, err := db.Reader().ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err == nil {
		t.Error("a reader connection wrote")
	}
}
