package campaigns

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "campaigns"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const campaignColumns = `id, name, channel, template_id, template_version, segment_ids, exclude_segment_ids, sender, rate, status,
	schedule, start_at, audience_ready, recipients, queued, cursor_send_at, cursor_contact, version, created_at, updated_at,
	started_at, completed_at`

func scanCampaign(r store.Scanner) (*Campaign, error) {
	var (
		c                           Campaign
		segs, excl, sender          string
		schedule                    sql.NullString
		startAt, started, completed sql.NullInt64
		created, updated            int64
		ready                       int
	)
	if err := r.Scan(&c.ID, &c.Name, &c.Channel, &c.TemplateID, &c.TemplateVersion, &segs, &excl, &sender, &c.Rate, &c.Status,
		&schedule, &startAt, &ready, &c.Recipients, &c.Queued, &c.cursor.SendAt, &c.cursor.ContactID, &c.Version, &created, &updated,
		&started, &completed); err != nil {
		return nil, err
	}
	if err := errors.Join(json.Unmarshal([]byte(segs), &c.SegmentIDs), json.Unmarshal([]byte(excl), &c.ExcludeSegmentIDs),
		json.Unmarshal([]byte(sender), &c.Sender)); err != nil {
		return nil, fmt.Errorf("campaign %s: stored lists do not decode: %w", c.ID, err)
	}
	if schedule.Valid {
		c.Schedule = &Schedule{}
		if err := json.Unmarshal([]byte(schedule.String), c.Schedule); err != nil {
			return nil, fmt.Errorf("campaign %s: stored schedule does not decode: %w", c.ID, err)
		}
	}
	c.audienceReady = ready == 1
	c.CreatedAt, c.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	c.StartAt, c.StartedAt, c.CompletedAt = timeOrNil(startAt), timeOrNil(started), timeOrNil(completed)
	return &c, nil
}

func timeOrNil(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

func millisOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

func scheduleOrNil(s *Schedule) any {
	if s == nil {
		return nil
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func insertCampaign(ctx context.Context, q querier, tenant string, c *Campaign) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO campaigns (tenant_id, id, name, channel, template_id, segment_ids, exclude_segment_ids,
		sender, rate, status, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`,
		tenant, c.ID, c.Name, c.Channel, c.TemplateID, mustJSON(c.SegmentIDs), mustJSON(c.ExcludeSegmentIDs), mustJSON(c.Sender),
		c.Rate, c.Status, c.Version, c.CreatedAt.UnixMilli()); err != nil {
		return fmt.Errorf("insert campaign: %w", err)
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO campaign_stats (tenant_id, campaign_id) VALUES ($1, $2)`, tenant, c.ID); err != nil {
		return fmt.Errorf("insert campaign stats: %w", err)
	}
	return nil
}

func getCampaign(ctx context.Context, q querier, tenant, id string) (*Campaign, error) {
	c, err := scanCampaign(q.QueryRowContext(ctx, `SELECT `+campaignColumns+` FROM campaigns WHERE tenant_id = $1 AND id = $2`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read campaign %s: %w", id, err)
	}
	return c, nil
}

// listCursor is the last campaign of a page, newest first.
type listCursor struct {
	CreatedAt int64  `json:"c"`
	ID        string `json:"i"`
}

func listCampaigns(ctx context.Context, q querier, tenant, status string, before *listCursor, limit int) ([]*Campaign, error) {
	query := `SELECT ` + campaignColumns + ` FROM campaigns WHERE tenant_id = $1 AND ($2 = '' OR status = $2)`
	args := []any{tenant, status}
	if before != nil {
		query += ` AND (created_at, id) < ($3, $4)`
		args = append(args, before.CreatedAt, before.ID)
	}
	query += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, limit)
	return store.Collect(ctx, q, "list campaigns", scanCampaign, query, args...)
}

func updateDefinition(ctx context.Context, q querier, tenant string, c *Campaign) error {
	_, err := q.ExecContext(ctx, `UPDATE campaigns SET name = $3, channel = $4, template_id = $5, segment_ids = $6,
		exclude_segment_ids = $7, sender = $8, rate = $9, version = $10, updated_at = $11 WHERE tenant_id = $1 AND id = $2`,
		tenant, c.ID, c.Name, c.Channel, c.TemplateID, mustJSON(c.SegmentIDs), mustJSON(c.ExcludeSegmentIDs), mustJSON(c.Sender),
		c.Rate, c.Version, c.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("update campaign %s: %w", c.ID, err)
	}
	return nil
}

// updateState writes a transition, guarded by the status it was read in:
// of two racing transitions only one applies.
func updateState(ctx context.Context, q querier, tenant string, c *Campaign, from string) error {
	res, err := q.ExecContext(ctx, `UPDATE campaigns SET status = $4, schedule = $5, start_at = $6, template_version = $7,
		version = $8, updated_at = $9, started_at = $10, completed_at = $11 WHERE tenant_id = $1 AND id = $2 AND status = $3`,
		tenant, c.ID, from, c.Status, scheduleOrNil(c.Schedule), millisOrNil(c.StartAt), c.TemplateVersion, c.Version,
		c.UpdatedAt.UnixMilli(), millisOrNil(c.StartedAt), millisOrNil(c.CompletedAt))
	if err != nil {
		return fmt.Errorf("update campaign %s: %w", c.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(err, fmt.Errorf("campaign %s changed status while being moved from %s; try again", c.ID, from))
	}
	return nil
}

func readStats(ctx context.Context, q querier, tenant string, c *Campaign) (*Stats, error) {
	st := &Stats{CampaignID: c.ID, Status: c.Status, Recipients: c.Recipients, Queued: c.Queued}
	err := q.QueryRowContext(ctx, `SELECT sent, delivered, opened, unique_opened, clicked, unique_clicked, bounced, complained,
		unsubscribed, failed, skipped, held, settled, final FROM campaign_stats WHERE tenant_id = $1 AND campaign_id = $2`, tenant, c.ID).
		Scan(&st.Sent, &st.Delivered, &st.Opened, &st.UniqueOpened, &st.Clicked, &st.UniqueClicked, &st.Bounced, &st.Complained,
			&st.Unsubscribed, &st.Failed, &st.Skipped, &st.Held, &st.settled, &st.final)
	if err != nil {
		return nil, fmt.Errorf("read stats of campaign %s: %w", c.ID, err)
	}
	st.Pending = max(0, st.Queued-st.final)
	return st, nil
}
