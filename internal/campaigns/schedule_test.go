package campaigns

import (
	"strings"
	"testing"
	"time"
)

func TestScheduleStartAt(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		s       Schedule
		want    time.Time
		wantErr string
	}{
		{"at with an offset", Schedule{At: "2026-11-28T09:00:00+01:00"}, time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC), ""},
		{"at read in its time zone", Schedule{At: "2026-11-28T09:00", TimeZone: "America/New_York"}, time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC), ""},
		{"at in the past", Schedule{At: "2026-11-27T09:00:00Z"}, time.Time{}, "in the past"},
		{"at not a time", Schedule{At: "tomorrow"}, time.Time{}, "is not a time"},
		{"unknown zone", Schedule{At: "2026-11-28T09:00", TimeZone: "Mars/Olympus"}, time.Time{}, "not an IANA time zone"},
		{"local time starts in the first zone", Schedule{LocalTime: "09:00", Date: "2026-11-29"}, time.Date(2026, 11, 28, 19, 0, 0, 0, time.UTC), ""},
		{"local time already reached somewhere starts now", Schedule{LocalTime: "09:00", Date: "2026-11-27"}, now, ""},
		{"local time passed everywhere", Schedule{LocalTime: "09:00", Date: "2026-11-26"}, time.Time{}, "has passed in every time zone"},
		{"local time without a date", Schedule{LocalTime: "09:00"}, time.Time{}, "date"},
		{"bad local time", Schedule{LocalTime: "9am", Date: "2026-11-29"}, time.Time{}, "not a time of day"},
		{"both forms", Schedule{At: "2026-11-28T09:00:00Z", LocalTime: "09:00", Date: "2026-11-29"}, time.Time{}, "not both"},
		{"neither", Schedule{}, time.Time{}, "give at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.s.startAt(now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("startAt = %v, %v; want an error saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("startAt = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestSendTimesPerRecipientZone(t *testing.T) {
	st, err := newSendTimes(&Schedule{LocalTime: "09:30", Date: "2026-12-01", TimeZone: "Europe/London"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		zone string
		want time.Time
	}{
		{"America/Los_Angeles", time.Date(2026, 12, 1, 17, 30, 0, 0, time.UTC)},
		{"Asia/Tokyo", time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC)},
		{"", time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)},                     // the campaign's own zone
		{"Not/AZone", time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)},            // likewise
		{"America/Los_Angeles", time.Date(2026, 12, 1, 17, 30, 0, 0, time.UTC)}, // cached
	} {
		if got := st.at(tc.zone); got != tc.want.UnixMilli() {
			t.Errorf("at(%q) = %v, want %v", tc.zone, time.UnixMilli(got).UTC(), tc.want)
		}
	}
}

func TestTokenBucketPacesAndRefunds(t *testing.T) {
	start := time.Now()
	b := newTokenBucket(10)
	b.last = start
	if got := b.take(500, start); got != 1 {
		t.Fatalf("first take = %d, want 1 (the bucket starts with one token)", got)
	}
	if got := b.take(500, start.Add(500*time.Millisecond)); got != 5 {
		t.Fatalf("after half a second: %d, want 5", got)
	}
	if got := b.take(500, start.Add(5*time.Second)); got != 10 {
		t.Fatalf("after a long idle: %d, want 10 (a second's burst at most)", got)
	}
	b.refund(4)
	if got := b.take(500, start.Add(5*time.Second)); got != 4 {
		t.Fatalf("after a refund of 4: %d, want 4", got)
	}
	if w := b.wait(start.Add(5 * time.Second)); w <= 0 || w > 100*time.Millisecond {
		t.Fatalf("wait for the next token = %v, want (0, 100ms]", w)
	}
	if got := newTokenBucket(0).take(500, start); got != 500 {
		t.Fatalf("unthrottled take = %d, want all 500", got)
	}
}

func TestWindowIsASecondOfSendingAtTheSlowestLimit(t *testing.T) {
	r := NewRunner(&Service{}, RunnerConfig{MaxInFlight: 4096, ChannelRates: map[string]float64{"sms": 10}, TenantRate: 500})
	for _, tc := range []struct {
		c    Campaign
		want int
	}{
		{Campaign{Channel: "email"}, 500},          // the tenant's limit
		{Campaign{Channel: "email", Rate: 50}, 50}, // the campaign's own
		{Campaign{Channel: "sms", Rate: 50}, 10},   // the provider's
		{Campaign{Channel: "sms", Rate: 0.5}, 1},   // never below one
	} {
		if got := r.window(r.rate(&tc.c)); got != tc.want {
			t.Errorf("window for %+v = %d, want %d", tc.c, got, tc.want)
		}
	}
	if got := NewRunner(&Service{}, RunnerConfig{MaxInFlight: 4096}).window(0); got != 4096 {
		t.Errorf("unthrottled window = %d, want MaxInFlight", got)
	}
}
