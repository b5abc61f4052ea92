package store

import (
	"context"
	"database/sql"
)

// StmtCache runs statements in a transaction, preparing each on first use
// and reusing it: for work that runs the same few statements many times in
// one transaction (imports, batched sends), where parsing the SQL again
// for every row would cost more than running it.
//
// Its statements run without ctx's cancellation: the transaction already
// has it (database/sql rolls it back when ctx ends), and the SQLite driver
// would otherwise start a goroutine per statement to watch ctx, a
// measurable cost per row.
type StmtCache struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// NewStmtCache returns a cache over tx; Close it before the transaction ends.
func NewStmtCache(tx *sql.Tx) *StmtCache {
	return &StmtCache{tx: tx, stmts: map[string]*sql.Stmt{}}
}

func (c *StmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

// ExecContext runs query with args.
func (c *StmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.WithoutCancel(ctx), args...)
}

// QueryContext runs query with args and returns its rows.
func (c *StmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(context.WithoutCancel(ctx), args...)
}

// QueryRowContext runs query with args for one row; a failed prepare
// shows through the row, as with the database/sql methods it stands in for.
func (c *StmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return c.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(context.WithoutCancel(ctx), args...)
}

// Close closes the prepared statements.
func (c *StmtCache) Close() {
	for _, st := range c.stmts {
		st.Close()
	}
}
