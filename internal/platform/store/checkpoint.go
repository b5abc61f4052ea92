package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// SQLite's WAL is copied back into the database file by checkpoints. Left
// to itself, SQLite runs one inside the commit that crosses 1,000 pages,
// on the one writer connection, so every transaction waits while pages
// are copied: a tenth of the writer's time under a steady send. The
// writer turns that off (wal_autocheckpoint(0)) and a checkpointer on its
// own connection copies pages in the background instead. A PASSIVE
// checkpoint neither waits for nor blocks readers or the writer; once one
// has copied every frame, the next write starts the WAL over from its
// beginning, so the file stays bounded without ever stopping a writer.

// checkpointEvery is how often the checkpointer runs. At 50 MB/s of WAL
// (a full-speed send with 5 KB bodies) the WAL grows by at most 10 MB
// between runs.
const checkpointEvery = 200 * time.Millisecond

// checkpointer copies WAL frames into the database file in the background.
type checkpointer struct {
	conn *sql.DB
	stop chan struct{}
	done sync.WaitGroup
}

func startCheckpointer(conn *sql.DB) *checkpointer {
	c := &checkpointer{conn: conn, stop: make(chan struct{})}
	c.done.Go(c.run)
	return c
}

func (c *checkpointer) run() {
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			// An error (the database busy in a way PASSIVE cannot skip, or
			// closing) is retried at the next tick; SQLite keeps the WAL
			// consistent whatever happens to a checkpoint.
			_, _ = c.checkpoint(context.Background(), "PASSIVE")
		}
	}
}

// checkpoint runs one checkpoint in mode (PASSIVE or TRUNCATE) and
// reports whether it copied every frame of the WAL.
func (c *checkpointer) checkpoint(ctx context.Context, mode string) (complete bool, err error) {
	var busy, logFrames, copied int
	if err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &copied); err != nil {
		return false, fmt.Errorf("wal checkpoint (%s): %w", mode, err)
	}
	return busy == 0 && copied == logFrames, nil
}

// close stops the background runs and, with the writer and readers
// closed, truncates the WAL so the database file alone holds everything.
func (c *checkpointer) close() error {
	close(c.stop)
	c.done.Wait()
	_, err := c.checkpoint(context.Background(), "TRUNCATE")
	return errors.Join(err, c.conn.Close())
}
