package sequences

import (
	"testing"
	"time"
)

func TestParseDelay(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 0, false},
		{"0s", 0, false},
		{"90m", 90 * time.Minute, false},
		{"36h", 36 * time.Hour, false},
		{"3d", 72 * time.Hour, false},
		{"0d", 0, false},
		{"1.5d", 0, true},
		{"-1h", 0, true},
		{"-2d", 0, true},
		{"2 days", 0, true},
		{"d", 0, true},
	} {
		got, err := ParseDelay(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseDelay(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
