package twilio

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// ErrConfiguration is wrapped by failures that come from the account or
// its configuration rather than from the message: rejected credentials
// (HTTP 401/403, Twilio 20003), an inactive account, an unknown account
// (20404 on the Messages resource), a sender that is not the account's.
//
// They are transient on purpose. Every message would fail the same way
// until an operator fixes the setting; marking them permanent would fail
// a whole campaign for good over one mistyped token, while as transient
// failures they end, after the pipeline's retries, in the dead-letter
// queue, from where they can be replayed once the setting is fixed. Test
// for it with errors.Is to alert or to pause the channel.
var ErrConfiguration = channel.ErrConfiguration

// Twilio error codes whose class does not follow from the HTTP status.
// https://www.twilio.com/docs/api/errors
var (
	// permanentCodes are refusals of this message or recipient.
	permanentCodes = map[int]bool{
		21211: true, // invalid 'To' phone number
		21214: true, // 'To' phone number cannot be reached
		21217: true, // phone number does not appear to be valid
		21219: true, // 'To' number not verified (trial account)
		21401: true, // invalid phone number
		21407: true, // this phone number type does not support SMS
		21408: true, // sending to the recipient's region is not enabled
		21602: true, // message body is required
		21604: true, // 'To' phone number is required
		21605: true, // maximum body length is 1600 characters
		21610: true, // recipient has unsubscribed (replied STOP)
		21612: true, // 'To' not reachable from this 'From'
		21614: true, // 'To' is not a mobile number
		21617: true, // concatenated body exceeds 1600 characters
		21635: true, // 'To' is a landline
	}
	// configurationCodes are refusals of the account or its settings.
	configurationCodes = map[int]bool{
		20003: true, // authentication failed
		20005: true, // account not active
		20008: true, // test credentials used for a live resource
		20404: true, // resource not found: the Account SID in the URL is unknown
		21212: true, // invalid 'From' number
		21606: true, // 'From' is not a message-capable number of this account
		21609: true, // invalid StatusCallback URL
		21659: true, // 'From' is not a Twilio number
		21660: true, // 'From' does not belong to this account
		21703: true, // Messaging Service has no sender available
		21704: true, // Messaging Service has no phone numbers
		21705: true, // Messaging Service is invalid
	}
	// transientCodes are throttling and Twilio's own failures that may
	// come with a 4xx status.
	transientCodes = map[int]bool{
		14107: true, // SMS send rate limit exceeded
		20429: true, // too many requests
		20500: true, // internal error
		20503: true, // service unavailable
		21611: true, // the 'From' number's queue is full
	}
)

// apiError is Twilio's error body:
// {"code": 21211, "message": "...", "more_info": "...", "status": 400}.
type apiError struct {
	Code     *int   `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// refusal turns a non-2xx answer into a *channel.Error.
func refusal(resp *http.Response, body []byte) error {
	e := &channel.Error{Provider: Provider, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var api apiError
	code := 0
	if json.Unmarshal(body, &api) == nil && api.Code != nil {
		code = *api.Code
		e.Code = strconv.Itoa(code)
	}
	e.Message = strings.TrimSpace(api.Message)
	switch {
	case e.Message == "":
		e.Message = "HTTP " + resp.Status
	case e.Code == "":
		e.Message += fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
	}

	switch {
	case permanentCodes[code]:
		e.Permanent = true
	case configurationCodes[code]:
		e.Err = ErrConfiguration
	case transientCodes[code]:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Err = ErrConfiguration
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
	default:
		// Any other 4xx: Twilio judged the request itself; sending it
		// again unchanged gets the same answer.
		e.Permanent = resp.StatusCode >= 400 && resp.StatusCode < 500
	}
	return e
}

// retryAfter reads a Retry-After header (see channel.ParseRetryAfter).
func retryAfter(v string, now time.Time) time.Duration { return channel.ParseRetryAfter(v, now) }

// maxRetryAfter is the longest wait honoured (channel.MaxRetryAfter).
const maxRetryAfter = channel.MaxRetryAfter
