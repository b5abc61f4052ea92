package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Suppression reasons.
const (
	SuppressHardBounce  = "hard_bounce"
	SuppressComplaint   = "complaint"
	SuppressUnsubscribe = "unsubscribe"
	SuppressManual      = "manual"
)

// Suppression is an address not to send to on a channel.
type Suppression struct {
	Channel   string    `json:"channel"`
	Address   string    `json:"address"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"createdAt"`
}

// normalizeAddress puts an address in the form messages store it in.
func normalizeAddress(ch, address string) (string, error) {
	a := strings.TrimSpace(address)
	if !event.ValidChannel(ch) {
		return "", fault.New(fault.Invalid, "invalid_field", "channel must be email, sms or whatsapp (got %q)", ch)
	}
	if a == "" || len(a) > 320 {
		return "", fault.New(fault.Invalid, "invalid_field", "address must be 1 to 320 characters")
	}
	if ch == event.ChannelEmail {
		if !strings.Contains(a, "@") {
			return "", fault.New(fault.Invalid, "invalid_field", "%q is not an email address", a)
		}
		return strings.ToLower(a), nil
	}
	if !strings.HasPrefix(a, "+") {
		return "", fault.New(fault.Invalid, "invalid_field", "%q is not an E.164 number such as +14155550123", a)
	}
	return a, nil
}

// Suppress adds an address to the tenant's suppression list for channel
// (keeping the first reason when it is there already).
func (s *Service) Suppress(ctx context.Context, tenant, ch, address, reason string) (*Suppression, error) {
	a, err := normalizeAddress(ch, address)
	if err != nil {
		return nil, err
	}
	if err := insertSuppression(ctx, s.DB.Writer(), tenant, ch, a, reason, s.clock()); err != nil {
		return nil, err
	}
	var sup Suppression
	var created int64
	if err := s.DB.Writer().QueryRowContext(ctx, `SELECT channel, address, reason, created_at FROM suppressions
		WHERE tenant_id = $1 AND channel = $2 AND address = $3`, tenant, ch, a).Scan(&sup.Channel, &sup.Address, &sup.Reason, &created); err != nil {
		return nil, fmt.Errorf("read suppression: %w", err)
	}
	sup.CreatedAt = time.UnixMilli(created).UTC()
	return &sup, nil
}

// insertSuppression adds address, already normalised, to the tenant's
// list for ch unless it is there already (which keeps its first reason).
func insertSuppression(ctx context.Context, q querier, tenant, ch, address, reason string, at time.Time) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO suppressions (tenant_id, channel, address, reason, created_at)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, tenant, ch, address, reason, at.UnixMilli()); err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	return nil
}

// Unsuppress removes an address from the list.
func (s *Service) Unsuppress(ctx context.Context, tenant, ch, address string) error {
	a, err := normalizeAddress(ch, address)
	if err != nil {
		return err
	}
	res, err := s.DB.Writer().ExecContext(ctx, `DELETE FROM suppressions WHERE tenant_id = $1 AND channel = $2 AND address = $3`, tenant, ch, a)
	if err != nil {
		return fmt.Errorf("unsuppress: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.New(fault.NotFound, "suppression_not_found", "%s is not suppressed on %s", a, ch)
	}
	return nil
}

// Suppressions lists the tenant's suppressed addresses on channel (all
// channels when empty), by channel and address, after the pair in after
// ("channel address"; empty for the first page).
func (s *Service) Suppressions(ctx context.Context, tenant, ch, after string, limit int) ([]Suppression, error) {
	var w store.Where
	w.And("tenant_id = ?", tenant)
	w.AndIf("channel = ?", ch)
	if afterCh, afterAddr, ok := strings.Cut(after, " "); ok {
		w.And("(channel, address) > (?, ?)", afterCh, afterAddr)
	}
	rows, err := s.DB.Reader().QueryContext(ctx, `SELECT channel, address, reason, created_at FROM suppressions `+w.String()+
		fmt.Sprintf(` ORDER BY channel, address LIMIT %d`, limit), w.Args()...)
	if err != nil {
		return nil, fmt.Errorf("list suppressions: %w", err)
	}
	defer rows.Close()
	var out []Suppression
	for rows.Next() {
		var sup Suppression
		var created int64
		if err := rows.Scan(&sup.Channel, &sup.Address, &sup.Reason, &created); err != nil {
			return nil, fmt.Errorf("list suppressions: %w", err)
		}
		sup.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, sup)
	}
	return out, rows.Err()
}
