package channel

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
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
