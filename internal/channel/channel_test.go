package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

func TestDoTellsUnknownOutcomes(t *testing.T) {
	// A server that takes the request and never answers: the outcome is unknown.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		<-r.Context().Done()
	}))
	defer hang.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", hang.URL, strings.NewReader("To=%2B1555"))
	if _, err := Do(http.DefaultClient, req); !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("a request written and unanswered: %v, want ErrUnknownOutcome", err)
	}
	// A server that is not there: nothing was sent, plainly transient.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	req, _ = http.NewRequest("POST", "http://"+addr, strings.NewReader("x"))
	if _, err := Do(http.DefaultClient, req); err == nil || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("a refused connection: %v, want a plain error", err)
	}
}
