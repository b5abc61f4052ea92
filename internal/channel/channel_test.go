package channel

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestClassification(t *testing.T) {
	perm := &Error{Provider: "twilio", Code: "21211", Message: "invalid 'To' number", Permanent: true}
	busy := &Error{Provider: "meta", Code: "130429", Message: "rate limit hit", RetryAfter: 2 * time.Second}
	cases := []struct {
		err       error
		permanent bool
		retry     time.Duration
		text      string
	}{
		{perm, true, 0, "twilio: permanent failure 21211: invalid 'To' number"},
		{fmt.Errorf("send 01: %w", perm), true, 0, "send 01: twilio: permanent failure 21211"},
		{busy, false, 2 * time.Second, "meta: transient failure 130429: rate limit hit"},
		{context.DeadlineExceeded, false, 0, "context deadline exceeded"},
		{&Error{Provider: "smtp", Err: context.Canceled}, false, 0, "smtp: transient failure: context canceled"},
	}
	for _, c := range cases {
		if got := IsPermanent(c.err); got != c.permanent {
			t.Errorf("IsPermanent(%v) = %v", c.err, got)
		}
		if got := RetryAfter(c.err); got != c.retry {
			t.Errorf("RetryAfter(%v) = %v", c.err, got)
		}
		if got := c.err.Error(); len(got) < len(c.text) || got[:len(c.text)] != c.text {
			t.Errorf("Error() = %q, want it to start with %q", got, c.text)
		}
	}
}
