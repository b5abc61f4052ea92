package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Rules are the sending rules beyond consent and suppression.
type Rules struct {
	// Quiet is the local time of day when Channels wait (nil: no quiet
	// hours), in each recipient's time zone (UTC when unknown).
	Quiet *QuietHours
	// QuietChannels are the channels quiet hours apply to.
	QuietChannels []string
	// FrequencyCap is the most campaign, workflow and sequence messages one
	// contact receives per FrequencyWindow (0: no cap). Messages asked for
	// through the API and inbox replies are exempt: they answer the contact.
	FrequencyCap    int
	FrequencyWindow time.Duration
	// TenantRate and ChannelRate bound messages per second, per tenant and
	// per channel's provider, in this instance (0: unlimited).
	TenantRate  float64
	ChannelRate map[string]float64
}

// QuietHours is a daily window, such as 21:00-08:00 (crossing midnight).
type QuietHours struct{ start, end time.Duration }

// ParseQuietHours reads "HH:MM-HH:MM".
func ParseQuietHours(s string) (*QuietHours, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	start, err1 := clock(a)
	end, err2 := clock(b)
	if !ok || err1 != nil || err2 != nil || start == end {
		return nil, fmt.Errorf("quiet hours %q: write the local window as HH:MM-HH:MM, e.g. 21:00-08:00", s)
	}
	return &QuietHours{start: start, end: end}, nil
}

func clock(s string) (time.Duration, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// Until returns when the quiet window around now ends in loc, or false when
// now is not quiet there.
func (q *QuietHours) Until(now time.Time, loc *time.Location) (time.Time, bool) {
	local := now.In(loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	since := local.Sub(midnight)
	switch {
	case q.start < q.end && since >= q.start && since < q.end: // e.g. 12:00-14:00
		return at(midnight, q.end, loc), true
	case q.start > q.end && since >= q.start: // evening part of 21:00-08:00
		return at(midnight.AddDate(0, 0, 1), q.end, loc), true
	case q.start > q.end && since < q.end: // morning part
		return at(midnight, q.end, loc), true
	}
	return time.Time{}, false
}

// at is day's local clock time d, computed on the calendar so DST days
// land on the intended hour.
func at(day time.Time, d time.Duration, loc *time.Location) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), int(d/time.Hour), int(d%time.Hour/time.Minute), 0, 0, loc)
}

// holdUntil returns when a message to r on ch may leave, or false when now.
func (s *Service) holdUntil(r Recipient, ch string, now time.Time) (time.Time, bool) {
	if s.Rules.Quiet == nil || !slices.Contains(s.Rules.QuietChannels, ch) {
		return time.Time{}, false
	}
	loc := time.UTC
	if r.TimeZone != "" {
		if l, err := time.LoadLocation(r.TimeZone); err == nil {
			loc = l
		}
	}
	return s.Rules.Quiet.Until(now, loc)
}

// capped reports whether the contact has had its share of marketing
// messages within the window.
func (s *Service) capped(ctx context.Context, tenant string, m *Message) (bool, error) {
	if s.Rules.FrequencyCap <= 0 || m.SourceType == SourceAPI || m.SourceType == event.MessageSourceInbox {
		return false, nil
	}
	var n int
	err := s.DB.Reader().QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE tenant_id = $1 AND contact_id = $2
		AND created_at > $3 AND id <> $4 AND status IN ('sending', 'sent', 'delivered')
		AND source_type NOT IN ('api', 'inbox')`,
		tenant, m.ContactID, s.clock().Add(-s.Rules.FrequencyWindow).UnixMilli(), m.ID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count recent messages: %w", err)
	}
	return n >= s.Rules.FrequencyCap, nil
}

// heldDueSQL writes the status out instead of binding it: the planners use
// the partial index of held messages only for a condition they can see.
const heldDueSQL = `SELECT tenant_id, ` + messageColumns + ` FROM messages
	WHERE status = '` + StatusHeld + `' AND send_after <= $1 ORDER BY send_after LIMIT 1000`

// ReleaseHeld re-queues held messages whose quiet hours are over; the app
// calls it periodically. It returns how many it released.
func (s *Service) ReleaseHeld(ctx context.Context) (int, error) {
	now := s.clock()
	released := 0
	err := s.Outbox.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		lock := ""
		if s.DB.Kind() == store.Postgres {
			lock = " FOR UPDATE SKIP LOCKED" // instances release different rows
		}
		rows, err := tx.QueryContext(ctx, heldDueSQL+lock, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("find held messages: %w", err)
		}
		type held struct {
			tenant string
			m      *Message
		}
		var due []held
		for rows.Next() {
			var tenant string
			m, err := scanMessage(scanFunc(func(dest ...any) error { return rows.Scan(append([]any{&tenant}, dest...)...) }))
			if err != nil {
				rows.Close()
				return fmt.Errorf("find held messages: %w", err)
			}
			due = append(due, held{tenant, m})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var envs []event.Envelope
		for _, h := range due {
			h.m.Status, h.m.UpdatedAt = StatusQueued, now
			if ok, err := setStatus(ctx, tx, h.tenant, h.m, StatusHeld); err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			env, err := event.New(event.EnsureCorrelation(ctx), event.PipelineMessageQueued, event.SourcePipeline, h.tenant, messageData(h.m))
			if err != nil {
				return err
			}
			envs = append(envs, env)
		}
		released = len(envs)
		return emit(envs...)
	})
	return released, err
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// limiter is a token bucket: rate tokens a second, up to burst.
type limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate float64) *limiter {
	burst := max(rate/10, 1) // a tenth of a second's worth: smooth, not bursty
	return &limiter{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// wait takes a token, sleeping until there is one or ctx ends.
func (l *limiter) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := time.Now()
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			l.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(need):
		}
	}
}

// limiters holds the buckets of tenants and channels.
type limiters struct {
	mu sync.Mutex
	m  map[string]*limiter
}

// wait takes a token from the tenant's and the channel's buckets.
func (s *Service) throttle(ctx context.Context, tenant, ch string) error {
	if s.Rules.TenantRate > 0 {
		if err := s.limits.get("t:"+tenant, s.Rules.TenantRate).wait(ctx); err != nil {
			return err
		}
	}
	if r := s.Rules.ChannelRate[ch]; r > 0 {
		return s.limits.get("c:"+ch, r).wait(ctx)
	}
	return nil
}

func (l *limiters) get(key string, rate float64) *limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*limiter{}
	}
	b, ok := l.m[key]
	if !ok {
		b = newLimiter(rate)
		l.m[key] = b
	}
	return b
}
