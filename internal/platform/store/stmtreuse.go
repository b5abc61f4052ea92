package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"

	"modernc.org/sqlite"
)

// The SQLite driver parses and plans every statement it is handed, even one
// it ran a moment ago: database/sql prepares, runs and closes a statement
// for each Exec and Query, and a statement prepared in a transaction dies
// with it. Under a sending campaign that parsing was 6% of the process's
// CPU. Each SQLite connection therefore keeps its most recently used
// statements, and hands a closed one out again to the next caller asking for
// the same SQL. PostgreSQL needs none of this: pgx caches statements itself.

// reusedStmtsPerConn bounds the statements a connection keeps. The hot
// paths run a few dozen distinct statements; multi-row inserts of varying
// sizes add more, and the least recently used are finalized.
const reusedStmtsPerConn = 128

// reusingConnector opens SQLite connections that reuse their statements.
type reusingConnector struct {
	dsn string
	drv *sqlite.Driver
}

func newReusingConnector(dsn string) *reusingConnector {
	return &reusingConnector{dsn: dsn, drv: &sqlite.Driver{}}
}

func (c *reusingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(sqliteConn)
	if !ok {
		conn.Close()
		return nil, errors.New("sqlite driver connection lacks the interfaces database/sql needs")
	}
	return &reusingConn{sqliteConn: inner, byQuery: map[string]*list.Element{}, lru: list.New()}, nil
}

func (c *reusingConnector) Driver() driver.Driver { return c.drv }

// sqliteConn is what database/sql uses of the driver's connection, besides
// Exec and Query: left out on purpose, so that database/sql prepares (here,
// reuses) a statement for them.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// reusingConn is used by one goroutine at a time (database/sql's rule for a
// driver connection), so its cache needs no lock.
type reusingConn struct {
	sqliteConn
	byQuery map[string]*list.Element // of *reusedStmt, idle or in use
	lru     *list.List               // front: most recently handed out
}

// reusedStmt is a statement of the cache. Close gives it back instead of
// finalizing it; one in use is not handed out twice (a query's rows may
// still be open while the same SQL runs again).
type reusedStmt struct {
	stmt
	conn   *reusingConn
	query  string
	inUse  bool
	cached bool // false once evicted: Close finalizes it
}

// stmt is the driver statement's interface that database/sql uses.
type stmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

func (c *reusingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *reusingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if el, ok := c.byQuery[query]; ok {
		s := el.Value.(*reusedStmt)
		if !s.inUse {
			s.inUse = true
			c.lru.MoveToFront(el)
			return s, nil
		}
	}
	ds, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(stmt)
	if !ok {
		return ds, nil
	}
	s := &reusedStmt{stmt: st, conn: c, query: query, inUse: true}
	if _, taken := c.byQuery[query]; taken {
		return s, nil // a second copy while the first is in use: not kept
	}
	s.cached = true
	c.byQuery[query] = c.lru.PushFront(s)
	for c.lru.Len() > reusedStmtsPerConn {
		c.evict(c.lru.Back())
	}
	return s, nil
}

func (c *reusingConn) evict(el *list.Element) {
	s := el.Value.(*reusedStmt)
	c.lru.Remove(el)
	delete(c.byQuery, s.query)
	s.cached = false
	if !s.inUse {
		s.stmt.Close()
	}
}

// Close finalizes the kept statements, then closes the connection.
func (c *reusingConn) Close() error {
	for c.lru.Len() > 0 {
		el := c.lru.Back()
		el.Value.(*reusedStmt).inUse = false
		c.evict(el)
	}
	return c.sqliteConn.Close()
}

func (s *reusedStmt) Close() error {
	s.inUse = false
	if s.cached {
		return nil
	}
	return s.stmt.Close()
}
