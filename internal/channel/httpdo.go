package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"
)

// ErrConfiguration marks a provider's refusal of our settings (credentials,
// account state, sender, TLS), not of the message: transient, so messages
// wait for the fix (the pipeline dead-letters them on their last attempt,
// for replay once fixed) instead of failing for good.
var ErrConfiguration = errors.New("the provider refused our configuration, not the message")

// Do sends req with client. A failure after the request was written in
// full (a timeout or a reset awaiting the answer) is wrapped in
// ErrUnknownOutcome: the provider may have taken the message, and APIs
// without idempotency keys (Twilio, Meta) would send a retry twice. A
// failure before that (connection refused, DNS, TLS) is plainly transient.
func Do(client *http.Client, req *http.Request) (*http.Response, error) {
	wrote := false
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) { wrote = info.Err == nil }}
	resp, err := client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil && wrote {
		return nil, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	}
	return resp, err
}

// Answer is a provider API's response, its body read.
type Answer struct {
	*http.Response
	Body []byte
	// ReadErr is a failure to read the body; for a 2xx it means the
	// provider took the message but we cannot tell its id.
	ReadErr error
}

// Post sends body to a provider's HTTP API and reads at most maxBody bytes
// of the answer. A failure to get an answer is a transient *Error of
// provider, wrapping ErrUnknownOutcome once the request was written (see
// Do): neither Twilio's nor Meta's API takes an idempotency key.
func Post(ctx context.Context, client *http.Client, provider, url string, body io.Reader, header http.Header, maxBody int64) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return Answer{}, &Error{Provider: provider, Message: "building the request", Err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := Do(client, req)
	if err != nil {
		return Answer{}, &Error{Provider: provider, Message: "request failed", Err: err}
	}
	defer resp.Body.Close()
	b, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return Answer{Response: resp, Body: b, ReadErr: readErr}, nil
}

// MaxRetryAfter bounds the wait a Retry-After header can ask for.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header value: delay-seconds or an
// HTTP date. Anything else, or a date in the past, is no wait.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}
