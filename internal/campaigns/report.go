package campaigns

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Report returns the stats with rates, and the timeline in steps of step
// (a minute, an hour or a day, in UTC).
func (s *Service) Report(ctx context.Context, tenant, id, interval string, step time.Duration) (*Report, error) {
	st, err := s.Stats(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	rep := &Report{Stats: *st, Interval: interval, Timeline: []TimelinePoint{}}
	ratio := func(n, d int64) float64 {
		if d == 0 {
			return 0
		}
		return float64(n) / float64(d)
	}
	rep.Rates = Rates{
		Delivery: ratio(st.Delivered, st.Sent), Open: ratio(st.UniqueOpened, st.Delivered), Click: ratio(st.UniqueClicked, st.Delivered),
		ClickToOpen: ratio(st.UniqueClicked, st.UniqueOpened), Bounce: ratio(st.Bounced, st.Sent), Complaint: ratio(st.Complained, st.Sent),
		Unsubscribe: ratio(st.Unsubscribed, st.Sent),
	}
	stepMs := step.Milliseconds()
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT minute / $3 * $3 AS at, metric, sum(count) FROM campaign_timeline
		WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY at, metric ORDER BY at, metric`, tenant, id, stepMs)
	if err != nil {
		return nil, fmt.Errorf("read timeline of campaign %s: %w", id, err)
	}
	defer rows.Close()
	points := map[int64]map[string]int64{}
	for rows.Next() {
		var (
			at     int64
			metric string
			n      int64
		)
		if err := rows.Scan(&at, &metric, &n); err != nil {
			return nil, fmt.Errorf("read timeline of campaign %s: %w", id, err)
		}
		if points[at] == nil {
			points[at] = map[string]int64{}
		}
		points[at][metric] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ats := make([]int64, 0, len(points))
	for at := range points {
		ats = append(ats, at)
	}
	sort.Slice(ats, func(i, j int) bool { return ats[i] < ats[j] })
	for _, at := range ats {
		rep.Timeline = append(rep.Timeline, TimelinePoint{At: time.UnixMilli(at).UTC(), Counts: points[at]})
	}
	return rep, nil
}
