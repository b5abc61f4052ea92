package campaigns

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/prometheus/client_golang/prometheus"
)

// RunnerConfig tunes the fan-out.
type RunnerConfig struct {
	// Owner names this process in leases; unique per process.
	Owner string
	// MaxInFlight bounds the messages queued but not yet sent, failed or
	// held: the pipeline stays busy, and a pause takes effect within about
	// a second because no more than that is ever waiting.
	MaxInFlight int
	// Batch is how many recipients one transaction queues.
	Batch int
	// ChannelRates and TenantRate are the pipeline's limits (messages/s,
	// 0 for none): the window shrinks to a second of sending at the
	// slowest of them and the campaign's own rate.
	ChannelRates map[string]float64
	TenantRate   float64
	// LeaseTTL is how long a process holds a campaign without renewing:
	// after a crash, another instance (or this one restarted) takes over
	// after at most that long.
	LeaseTTL time.Duration
	// Poll is how often the runner looks for campaigns to run and for
	// scheduled starts whose timer did not fire.
	Poll time.Duration
	// Running and Queued, when set, count the campaigns this process is
	// sending and the messages it queued (no campaign label: ids would
	// make a series per campaign).
	Running prometheus.Gauge
	Queued  prometheus.Counter
}

func (c *RunnerConfig) defaults() {
	if c.Owner == "" {
		c.Owner = event.NewID()
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4096
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 15 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
}

// overdueGrace is how late a scheduled start may be before the runner's
// sweep starts it: the durable timer normally fires first.
const overdueGrace = 10 * time.Second

// stallWarning is how long a campaign may wait for its last messages
// before the runner says where they may be.
const stallWarning = 5 * time.Minute

// snapshotPage is how many members one audience read and one insert
// transaction handle while freezing the audience.
const snapshotPage = 5000

// Runner sends started campaigns: it freezes each one's audience, then
// queues its recipients to the pipeline in batches, throttled, until all
// are queued and every message reached a final state. A lease on the
// campaign row makes one process run each campaign at a time.
type Runner struct {
	svc *Service
	cfg RunnerConfig

	mu      sync.Mutex
	running map[string]bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewRunner returns a runner for svc's campaigns.
func NewRunner(svc *Service, cfg RunnerConfig) *Runner {
	cfg.defaults()
	return &Runner{svc: svc, cfg: cfg, running: map[string]bool{}}
}

// Start runs the runner until Stop.
func (r *Runner) Start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.wg.Go(func() { r.loop(ctx) })
}

// Stop stops queueing and releases the leases; another start resumes
// each campaign where it stopped.
func (r *Runner) Stop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
}

func (r *Runner) loop(ctx context.Context) {
	tick := time.NewTicker(r.cfg.Poll)
	defer tick.Stop()
	for {
		r.startOverdue(ctx)
		r.claim(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.svc.wake:
		}
	}
}

// startOverdue starts scheduled campaigns whose timer has not fired in
// time (it could not be armed, or its stream was lost).
func (r *Runner) startOverdue(ctx context.Context) {
	s := r.svc
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT tenant_id, id, start_at FROM campaigns
		WHERE status = $1 AND start_at <= $2`, StatusScheduled, s.clock().Add(-overdueGrace).UnixMilli())
	if err != nil {
		r.logErr(ctx, "look for overdue campaigns", err)
		return
	}
	type due struct {
		tenant, id string
		at         int64
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.tenant, &d.id, &d.at); err == nil {
			list = append(list, d)
		}
	}
	rows.Close()
	for _, d := range list {
		at := time.UnixMilli(d.at).UTC()
		s.log.WarnContext(ctx, "scheduled campaign overdue; starting it", "tenant", d.tenant, "campaign", d.id, "startAt", at)
		_, err := s.start(ctx, d.tenant, d.id, &at)
		var fe *fault.Error
		switch {
		case err == nil, errors.Is(err, errStaleTimer):
		case errors.As(err, &fe) && fe.Kind == fault.Conflict:
			err = s.cannotStart(ctx, d.tenant, d.id, fe)
		}
		if err != nil && !errors.Is(err, errStaleTimer) {
			r.logErr(ctx, "start overdue campaign "+d.id, err)
		}
	}
}

// claim takes the lease of every started campaign nobody runs.
func (r *Runner) claim(ctx context.Context) {
	s := r.svc
	now := s.clock().UnixMilli()
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT tenant_id, id FROM campaigns
		WHERE status = $1 AND (lease_until < $2 OR lease_owner = $3)`, StatusStarted, now, r.cfg.Owner)
	if err != nil {
		r.logErr(ctx, "look for campaigns to run", err)
		return
	}
	var ids [][2]string
	for rows.Next() {
		var t, id string
		if err := rows.Scan(&t, &id); err == nil {
			ids = append(ids, [2]string{t, id})
		}
	}
	rows.Close()
	for _, k := range ids {
		key := k[0] + "/" + k[1]
		r.mu.Lock()
		busy := r.running[key]
		r.mu.Unlock()
		if busy {
			continue
		}
		res, err := s.db.Writer().ExecContext(ctx, `UPDATE campaigns SET lease_owner = $3, lease_until = $4
			WHERE tenant_id = $1 AND id = $2 AND status = $5 AND (lease_until < $6 OR lease_owner = $3)`,
			k[0], k[1], r.cfg.Owner, now+r.cfg.LeaseTTL.Milliseconds(), StatusStarted, now)
		if err != nil {
			r.logErr(ctx, "take campaign lease", err)
			continue
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue // another instance took it
		}
		r.mu.Lock()
		r.running[key] = true
		r.mu.Unlock()
		r.wg.Go(func() {
			defer func() {
				r.mu.Lock()
				delete(r.running, key)
				r.mu.Unlock()
			}()
			r.run(ctx, k[0], k[1])
		})
	}
}

func (r *Runner) logErr(ctx context.Context, what string, err error) {
	if ctx.Err() == nil {
		r.svc.log.ErrorContext(ctx, what, "err", err)
	}
}

// errLeaseLost ends a run whose campaign another process now holds, or
// whose status moved (paused, cancelled) under it.
var errLeaseLost = errors.New("campaign lease lost or status changed")

// run sends one campaign while this process holds its lease.
func (r *Runner) run(ctx context.Context, tenant, id string) {
	s := r.svc
	log := s.log.With("tenant", tenant, "campaign", id)
	defer r.release(tenant, id)
	if r.cfg.Running != nil {
		r.cfg.Running.Inc()
		defer r.cfg.Running.Dec()
	}
	leaseUntil := time.Now().Add(r.cfg.LeaseTTL)
	var bucket *tokenBucket
	lastLog := time.Now()
	lastFinal, finalSince := int64(-1), time.Now()
	for ctx.Err() == nil {
		if time.Until(leaseUntil) < r.cfg.LeaseTTL/2 {
			ok, err := r.renew(ctx, tenant, id)
			if err != nil || !ok {
				if err != nil {
					r.logErr(ctx, "renew campaign lease", err)
				}
				return
			}
			leaseUntil = time.Now().Add(r.cfg.LeaseTTL)
		}
		c, err := getCampaign(ctx, s.db.Reader(), tenant, id)
		if err != nil {
			r.logErr(ctx, "read campaign", err)
			return
		}
		if c.Status != StatusStarted {
			log.InfoContext(ctx, "campaign runner stops", "status", c.Status, "queued", c.Queued)
			return
		}
		if !c.audienceReady {
			if err := r.snapshot(ctx, tenant, c); err != nil {
				if !errors.Is(err, errLeaseLost) {
					r.logErr(ctx, "freeze campaign audience", err)
					sleep(ctx, time.Second)
				}
				continue
			}
			log.InfoContext(ctx, "campaign audience frozen", "recipients", c.Recipients)
			continue
		}
		st, err := readStats(ctx, s.db.Reader(), tenant, c)
		if err != nil {
			r.logErr(ctx, "read campaign stats", err)
			sleep(ctx, time.Second)
			continue
		}
		if time.Since(lastLog) >= 5*time.Second {
			log.InfoContext(ctx, "campaign progress", "recipients", c.Recipients, "queued", c.Queued, "sent", st.Sent, "failed", st.Failed, "skipped", st.Skipped, "pending", st.Pending)
			lastLog = time.Now()
		}
		rate := r.rate(c)
		if bucket == nil || bucket.rate != rate {
			bucket = newTokenBucket(rate)
		}
		room := int64(r.window(rate)) - (c.Queued - st.settled)
		if room <= 0 {
			sleep(ctx, 20*time.Millisecond)
			continue
		}
		n := min(int(room), r.cfg.Batch)
		if n = bucket.take(n, time.Now()); n == 0 {
			// At most a poll interval: the lease is renewed between sleeps.
			sleep(ctx, min(bucket.wait(time.Now()), r.cfg.Poll))
			continue
		}
		queued, next, done, err := r.queue(ctx, tenant, c, n)
		switch {
		case errors.Is(err, errLeaseLost):
			continue // re-read: paused or cancelled in the meantime
		case err != nil:
			r.logErr(ctx, "queue campaign messages", err)
			sleep(ctx, time.Second)
		case done:
			if st.final >= c.Queued {
				if _, err := r.complete(ctx, tenant, id); err != nil && !errors.Is(err, errLeaseLost) {
					r.logErr(ctx, "complete campaign", err)
				}
				continue
			}
			if st.final != lastFinal {
				lastFinal, finalSince = st.final, time.Now()
			} else if time.Since(finalSince) > stallWarning {
				log.WarnContext(ctx, "campaign waits for messages that have not reached a final state; their pipeline.message.queued events may be in the dead-letter queue (alumoutreach dlq list)",
					"pending", c.Queued-st.final, "since", finalSince)
				finalSince = time.Now()
			}
			sleep(ctx, 50*time.Millisecond) // the last messages are on their way
		case queued == 0:
			sleep(ctx, min(time.Until(next), r.cfg.Poll)) // the next recipient's local time is ahead
		}
		bucket.refund(n - queued)
	}
}

// rate is the slowest limit that applies to c (0: none).
func (r *Runner) rate(c *Campaign) float64 {
	rate := c.Rate
	for _, lim := range []float64{r.cfg.ChannelRates[c.Channel], r.cfg.TenantRate} {
		if lim > 0 && (rate == 0 || lim < rate) {
			rate = lim
		}
	}
	return rate
}

// window is how many messages may be queued and not yet settled: a
// second of sending at rate, within [1, MaxInFlight].
func (r *Runner) window(rate float64) int {
	if rate <= 0 {
		return r.cfg.MaxInFlight
	}
	return max(1, min(r.cfg.MaxInFlight, int(math.Ceil(rate))))
}

func (r *Runner) renew(ctx context.Context, tenant, id string) (bool, error) {
	res, err := r.svc.db.Writer().ExecContext(ctx, `UPDATE campaigns SET lease_until = $4 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`,
		tenant, id, r.cfg.Owner, time.Now().Add(r.cfg.LeaseTTL).UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (r *Runner) release(tenant, id string) {
	// Without cancellation: the lease must be given back even when the
	// runner stops because its context ended.
	_, err := r.svc.db.Writer().ExecContext(context.Background(), `UPDATE campaigns SET lease_owner = '', lease_until = 0
		WHERE tenant_id = $1 AND id = $2 AND lease_owner = $3`, tenant, id, r.cfg.Owner)
	if err != nil {
		r.svc.log.Error("release campaign lease", "tenant", tenant, "campaign", id, "err", err)
	}
}

// snapshot freezes the audience: the members of the campaign's segments,
// without the members of its exclusion segments, each with its send time.
// It starts over if an earlier attempt was cut off.
func (r *Runner) snapshot(ctx context.Context, tenant string, c *Campaign) error {
	s := r.svc
	var times *sendTimes
	if c.Schedule.PerRecipient() {
		var err error
		if times, err = newSendTimes(c.Schedule); err != nil {
			return fmt.Errorf("campaign %s schedule: %w", c.ID, err)
		}
	}
	if _, err := s.db.Writer().ExecContext(ctx, `DELETE FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2`, tenant, c.ID); err != nil {
		return fmt.Errorf("clear partial audience: %w", err)
	}
	for _, seg := range c.SegmentIDs {
		err := r.eachPage(ctx, tenant, c.ID, seg, func(tx *sql.Tx, members []Member) error {
			return insertRecipients(ctx, tx, tenant, c.ID, members, times)
		})
		if err != nil {
			return err
		}
	}
	for _, seg := range c.ExcludeSegmentIDs {
		err := r.eachPage(ctx, tenant, c.ID, seg, func(tx *sql.Tx, members []Member) error {
			return deleteRecipients(ctx, tx, tenant, c.ID, members)
		})
		if err != nil {
			return err
		}
	}
	ctx = event.EnsureCorrelation(ctx)
	return s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2`,
			tenant, c.ID).Scan(&c.Recipients); err != nil {
			return fmt.Errorf("count audience: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE campaigns SET audience_ready = 1, recipients = $3, cursor_send_at = -1, cursor_contact = '', queued = 0
			WHERE tenant_id = $1 AND id = $2 AND lease_owner = $4 AND status IN ($5, $6) AND audience_ready = 0`,
			tenant, c.ID, c.Recipients, r.cfg.Owner, StatusStarted, StatusPaused)
		if err != nil {
			return fmt.Errorf("mark audience frozen: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errLeaseLost
		}
		env, err := event.New(ctx, event.CampaignStarted, event.SourceCampaigns, tenant, event.CampaignStartedData{
			CampaignID: c.ID, Name: c.Name, Channel: c.Channel, TemplateID: c.TemplateID, Recipients: c.Recipients})
		if err != nil {
			return err
		}
		return emit(env)
	})
}

// eachPage hands fn every member of a segment, a page per transaction.
func (r *Runner) eachPage(ctx context.Context, tenant, campaignID, segmentID string, fn func(tx *sql.Tx, members []Member) error) error {
	after := ""
	for {
		members, err := r.svc.audience.Members(ctx, tenant, segmentID, after, snapshotPage)
		if err != nil {
			return fmt.Errorf("read members of segment %s: %w", segmentID, err)
		}
		if len(members) == 0 {
			return nil
		}
		if err := r.svc.db.InTx(ctx, func(tx *sql.Tx) error { return fn(tx, members) }); err != nil {
			return err
		}
		after = members[len(members)-1].ContactID
		if ok, err := r.renew(ctx, tenant, campaignID); err != nil || !ok {
			return errors.Join(err, errLeaseLost)
		}
	}
}

// rowsPerStatement keeps multi-row statements within both engines'
// parameter limits.
const rowsPerStatement = 500

func insertRecipients(ctx context.Context, tx *sql.Tx, tenant, campaignID string, members []Member, times *sendTimes) error {
	for lo := 0; lo < len(members); lo += rowsPerStatement {
		chunk := members[lo:min(lo+rowsPerStatement, len(members))]
		var q strings.Builder
		q.WriteString(`INSERT INTO campaign_recipients (tenant_id, campaign_id, contact_id, send_at) VALUES `)
		args := []any{tenant, campaignID}
		for i, m := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			var at int64
			if times != nil {
				at = times.at(m.TimeZone)
			}
			fmt.Fprintf(&q, "($1, $2, $%d, $%d)", len(args)+1, len(args)+2)
			args = append(args, m.ContactID, at)
		}
		q.WriteString(` ON CONFLICT DO NOTHING`)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("insert audience: %w", err)
		}
	}
	return nil
}

func deleteRecipients(ctx context.Context, tx *sql.Tx, tenant, campaignID string, members []Member) error {
	for lo := 0; lo < len(members); lo += rowsPerStatement {
		chunk := members[lo:min(lo+rowsPerStatement, len(members))]
		args := []any{tenant, campaignID}
		marks := make([]string, len(chunk))
		for i, m := range chunk {
			args = append(args, m.ContactID)
			marks[i] = fmt.Sprintf("$%d", len(args))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM campaign_recipients WHERE tenant_id = $1 AND campaign_id = $2 AND contact_id IN (`+
			strings.Join(marks, ", ")+`)`, args...); err != nil {
			return fmt.Errorf("exclude from audience: %w", err)
		}
	}
	return nil
}

// queue hands up to n due recipients after the cursor to the pipeline:
// their pipeline.message.queued events, their campaign_messages rows and
// the moved cursor commit together, and only while this process holds
// the lease of a campaign still started. It reports how many it queued,
// when the next recipient is due if none was, and done when none is left.
func (r *Runner) queue(ctx context.Context, tenant string, c *Campaign, n int) (queued int, next time.Time, done bool, err error) {
	s := r.svc
	now := s.clock()
	ctx = event.EnsureCorrelation(ctx)
	err = s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		// A row value, not "send_at > $3 OR (send_at = $3 AND ...)": both
		// engines seek the index to the cursor with it, where the OR form
		// scanned the campaign's audience from its start in every batch
		// (quadratic over the campaign, inside the writer's transaction).
		rows, err := tx.QueryContext(ctx, `SELECT contact_id, send_at FROM campaign_recipients
			WHERE tenant_id = $1 AND campaign_id = $2 AND (send_at, contact_id) > ($3, $4)
			ORDER BY send_at, contact_id LIMIT $5`, tenant, c.ID, c.cursor.SendAt, c.cursor.ContactID, n)
		if err != nil {
			return fmt.Errorf("read audience: %w", err)
		}
		var due []cursor
		seen := 0
		for rows.Next() {
			var rc cursor
			if err := rows.Scan(&rc.ContactID, &rc.SendAt); err != nil {
				rows.Close()
				return err
			}
			seen++
			if rc.SendAt > now.UnixMilli() {
				if len(due) == 0 {
					next = time.UnixMilli(rc.SendAt)
				}
				break
			}
			due = append(due, rc)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if seen == 0 {
			done = true
			return nil
		}
		if len(due) == 0 {
			return nil
		}
		envs := make([]event.Envelope, 0, len(due))
		ins := make([]string, 0, len(due))
		args := []any{tenant, c.ID}
		for _, rc := range due {
			id := event.NewID()
			env, err := event.New(ctx, event.PipelineMessageQueued, event.SourceCampaigns, tenant, event.MessageData{
				MessageID: id, Channel: c.Channel, ContactID: rc.ContactID, SourceType: event.MessageSourceCampaign,
				SourceID: c.ID, TemplateID: c.TemplateID, TemplateVersion: c.TemplateVersion, SourceName: c.Name,
				From: c.Sender.From, FromName: c.Sender.FromName, ReplyTo: c.Sender.ReplyTo})
			if err != nil {
				return err
			}
			envs = append(envs, env)
			args = append(args, id)
			ins = append(ins, fmt.Sprintf("($1, $%d, $2)", len(args)))
			if len(ins) == rowsPerStatement {
				if err := insertMessages(ctx, tx, ins, args); err != nil {
					return err
				}
				ins, args = ins[:0], args[:2]
			}
		}
		if len(ins) > 0 {
			if err := insertMessages(ctx, tx, ins, args); err != nil {
				return err
			}
		}
		last := due[len(due)-1]
		res, err := tx.ExecContext(ctx, `UPDATE campaigns SET queued = queued + $3, cursor_send_at = $4, cursor_contact = $5
			WHERE tenant_id = $1 AND id = $2 AND status = $6 AND lease_owner = $7 AND cursor_send_at = $8 AND cursor_contact = $9`,
			tenant, c.ID, len(due), last.SendAt, last.ContactID, StatusStarted, r.cfg.Owner, c.cursor.SendAt, c.cursor.ContactID)
		if err != nil {
			return fmt.Errorf("move campaign cursor: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errLeaseLost
		}
		queued = len(due)
		return emit(envs...)
	})
	if err == nil && queued > 0 && r.cfg.Queued != nil {
		r.cfg.Queued.Add(float64(queued))
	}
	return queued, next, done, err
}

func insertMessages(ctx context.Context, tx *sql.Tx, values []string, args []any) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO campaign_messages (tenant_id, message_id, campaign_id) VALUES `+strings.Join(values, ", "), args...); err != nil {
		return fmt.Errorf("record campaign messages: %w", err)
	}
	return nil
}

// complete closes a campaign whose every message reached a final state.
func (r *Runner) complete(ctx context.Context, tenant, id string) (*Campaign, error) {
	s := r.svc
	return s.transition(ctx, tenant, id, "complete", StatusCompleted, []string{StatusStarted},
		func(tx *sql.Tx, c *Campaign) (*event.Envelope, error) {
			st, err := readStats(ctx, tx, tenant, c)
			if err != nil {
				return nil, err
			}
			now := s.clock()
			c.CompletedAt = &now
			s.log.InfoContext(ctx, "campaign completed", "tenant", tenant, "campaign", id, "recipients", c.Recipients,
				"sent", st.Sent, "failed", st.Failed, "skipped", st.Skipped)
			env, err := event.New(ctx, event.CampaignCompleted, event.SourceCampaigns, tenant, event.CampaignCompletedData{
				CampaignID: c.ID, Name: c.Name, Recipients: c.Recipients, Queued: c.Queued, Skipped: st.Skipped})
			return &env, err
		})
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// tokenBucket paces a campaign at its rate, with a second's burst.
type tokenBucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64) *tokenBucket {
	return &tokenBucket{rate: rate, tokens: min(rate, 1), last: time.Now()}
}

// take returns how many of n messages may go now (n when unthrottled).
func (b *tokenBucket) take(n int, now time.Time) int {
	if b.rate <= 0 {
		return n
	}
	if now.After(b.last) {
		b.tokens = min(math.Max(b.rate, 1), b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	k := min(n, int(b.tokens))
	b.tokens -= float64(k)
	return k
}

// refund returns tokens taken for messages not queued after all.
func (b *tokenBucket) refund(k int) {
	if b.rate > 0 && k > 0 {
		b.tokens += float64(k)
	}
}

// wait is how long until the next token.
func (b *tokenBucket) wait(now time.Time) time.Duration {
	if b.rate <= 0 {
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
