package campaigns

import (
	"time"
)

// The time zones furthest ahead of and behind UTC: a local-time campaign
// starts when its local time comes in the first and ends after the last.
var (
	firstZone = time.FixedZone("UTC+14", 14*3600)
	lastZone  = time.FixedZone("UTC-12", -12*3600)
)

// startAt validates the schedule and returns when the campaign starts.
func (s *Schedule) startAt(now time.Time) (time.Time, error) {
	loc := time.UTC
	if s.TimeZone != "" {
		l, err := time.LoadLocation(s.TimeZone)
		if err != nil || s.TimeZone == "Local" { // Local is the server's zone, not a place
			return time.Time{}, invalid("schedule.timeZone", "timeZone %q is not an IANA time zone such as Europe/London", s.TimeZone)
		}
		loc = l
	}
	switch {
	case s.At != "" && (s.LocalTime != "" || s.Date != ""):
		return time.Time{}, invalid("schedule", "give either at, or localTime and date, not both")
	case s.At != "":
		t, err := parseAt(s.At, loc)
		if err != nil {
			return time.Time{}, invalid("schedule.at", "at %q is not a time such as 2026-12-01T09:00:00Z, or 2026-12-01T09:00 read in timeZone", s.At)
		}
		if !t.After(now) {
			return time.Time{}, invalid("schedule.at", "at %s is in the past; to send now, start the campaign", t.UTC().Format(time.RFC3339))
		}
		return t.UTC().Truncate(time.Millisecond), nil
	case s.LocalTime != "" || s.Date != "":
		day, clock, err := s.local()
		if err != nil {
			return time.Time{}, err
		}
		at := func(zone *time.Location) time.Time {
			return time.Date(day.Year(), day.Month(), day.Day(), clock.Hour(), clock.Minute(), 0, 0, zone)
		}
		if !at(lastZone).After(now) {
			return time.Time{}, invalid("schedule.date", "%s %s has passed in every time zone", s.Date, s.LocalTime)
		}
		first := at(firstZone).UTC()
		if first.Before(now) {
			first = now // already that time somewhere: start now, each recipient at their own time
		}
		return first.Truncate(time.Millisecond), nil
	default:
		return time.Time{}, invalid("schedule", "give at (one moment) or localTime and date (each recipient's local time)")
	}
}

func parseAt(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		t, err = time.ParseInLocation("2006-01-02T15:04", s, loc)
	}
	return t, err
}

func (s *Schedule) local() (day, clock time.Time, err error) {
	if day, err = time.Parse(time.DateOnly, s.Date); err != nil {
		return day, clock, invalid("schedule.date", "date %q is not a day such as 2026-12-01 (localTime needs one)", s.Date)
	}
	if clock, err = time.Parse("15:04", s.LocalTime); err != nil {
		return day, clock, invalid("schedule.localTime", "localTime %q is not a time of day such as 09:00", s.LocalTime)
	}
	return day, clock, nil
}

// sendTimes computes each recipient's send time under a local-time
// schedule, caching time zones (an audience has few distinct ones).
type sendTimes struct {
	day, clock time.Time
	fallback   *time.Location
	zones      map[string]*time.Location
}

func newSendTimes(s *Schedule) (*sendTimes, error) {
	day, clock, err := s.local()
	if err != nil {
		return nil, err
	}
	fallback := time.UTC
	if s.TimeZone != "" {
		if fallback, err = time.LoadLocation(s.TimeZone); err != nil {
			return nil, err
		}
	}
	return &sendTimes{day: day, clock: clock, fallback: fallback, zones: map[string]*time.Location{}}, nil
}

// at returns when a recipient in zone tz gets the message (Unix ms); an
// unknown or invalid zone takes the schedule's own.
func (st *sendTimes) at(tz string) int64 {
	loc, ok := st.zones[tz]
	if !ok {
		loc = st.fallback
		if tz != "" {
			if l, err := time.LoadLocation(tz); err == nil {
				loc = l
			}
		}
		st.zones[tz] = loc
	}
	return time.Date(st.day.Year(), st.day.Month(), st.day.Day(), st.clock.Hour(), st.clock.Minute(), 0, 0, loc).UnixMilli()
}
