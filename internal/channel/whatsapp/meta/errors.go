package meta

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// ErrConfiguration is wrapped by failures that come from the app, the
// token or the business account rather than from the message: an invalid
// or expired access token (190, HTTP 401), missing permissions (10,
// 200-299), a locked, restricted or unpaid account, an unknown or
// unregistered phone number ID.
//
// They are transient on purpose. Every message would fail the same way
// until someone fixes the token or the account; marking them permanent
// would fail a whole campaign for good over an expired token, while as
// transient failures they end, after the pipeline's retries, in the
// dead-letter queue, from where they can be replayed once it is fixed.
// Test for it with errors.Is to alert or to pause the channel.
var ErrConfiguration = channel.ErrConfiguration

// class is what a Meta error code says about retrying.
type class int

const (
	unknown class = iota
	permanent
	transient
	configuration
)

// codes classes the Cloud API's error codes.
// https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
var codes = map[int]class{
	// Authorization and the account: fix the setting, then replay.
	0:      configuration, // AuthException: token expired or invalidated
	3:      configuration, // capability or permissions issue
	10:     configuration, // permission denied
	33:     configuration, // the business phone number was deleted
	190:    configuration, // access token has expired or is invalid
	368:    configuration, // temporarily blocked for policy violations
	2500:   configuration, // unknown path components: wrong base URL or version
	131005: configuration, // access denied
	131031: configuration, // business account locked
	131037: configuration, // display name needs approval
	131042: configuration, // business eligibility: payment issue
	131045: configuration, // phone number certificate issue
	133010: configuration, // phone number not registered on the Cloud API

	// Throttling and Meta's own failures: retry.
	1:      transient, // API unknown: possibly a server error
	2:      transient, // API service: temporary downtime or overload
	4:      transient, // app's API call rate limit
	80007:  transient, // business account's rate limit
	130429: transient, // Cloud API throughput reached
	131000: transient, // something went wrong
	131016: transient, // service unavailable
	131048: transient, // spam rate limit: too many messages flagged recently
	131056: transient, // pair rate limit: too many messages to this user
	131057: transient, // account in maintenance mode
	133004: transient, // server temporarily unavailable
	133016: transient, // registration rate limit

	// This message or this recipient: sending it again cannot succeed.
	100:    permanent, // invalid parameter
	130472: permanent, // recipient is part of an experiment
	130497: permanent, // business may not message users in this country
	131008: permanent, // required parameter missing
	131009: permanent, // parameter value invalid
	131021: permanent, // recipient cannot be the sender
	131026: permanent, // message undeliverable (not on WhatsApp, old app, ...)
	131047: permanent, // re-engagement: more than 24 h since the user wrote; send a template
	131049: permanent, // not delivered "to maintain healthy ecosystem engagement" (per-user marketing cap; Meta says wait 24 h)
	131050: permanent, // user stopped marketing messages
	131051: permanent, // unsupported message type
	131052: permanent, // media download error
	131053: permanent, // media upload error
	132000: permanent, // template parameter count mismatch
	132001: permanent, // template does not exist (in this language)
	132005: permanent, // template hydrated text too long
	132007: permanent, // template format character policy violated
	132012: permanent, // template parameter format mismatch
	132015: permanent, // template paused for low quality
	132016: permanent, // template disabled
	135000: permanent, // generic user error
}

// classOf classes a code, with the subcode where it matters.
func classOf(code, subcode int) class {
	if code == 100 && subcode == 33 {
		// "Object with ID ... does not exist": the phone number ID in the
		// URL is wrong, not the message.
		return configuration
	}
	if code >= 200 && code <= 299 {
		return configuration // API permission
	}
	return codes[code]
}

// apiError is the Graph API's error body.
type apiError struct {
	Error *struct {
		Message      string `json:"message"`
		Type         string `json:"type"`
		Code         *int   `json:"code"`
		ErrorSubcode int    `json:"error_subcode"`
		// ErrorUserTitle and ErrorUserMsg are Meta's explanation for
		// people, sent with template errors such as a duplicate.
		ErrorUserTitle string `json:"error_user_title"`
		ErrorUserMsg   string `json:"error_user_msg"`
		ErrorData      struct {
			Details string `json:"details"`
		} `json:"error_data"`
		FBTraceID string `json:"fbtrace_id"`
	} `json:"error"`
}

// refusal turns a non-2xx answer into a *channel.Error.
func refusal(resp *http.Response, body []byte) error {
	e := &channel.Error{Provider: Provider, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var api apiError
	cls := unknown
	if json.Unmarshal(body, &api) == nil && api.Error != nil {
		a := api.Error
		var msg []string
		if m := strings.TrimSpace(a.Message); m != "" {
			msg = append(msg, m)
		}
		if d := strings.TrimSpace(a.ErrorData.Details); d != "" && !strings.Contains(a.Message, d) {
			msg = append(msg, d)
		}
		if u := strings.TrimSpace(a.ErrorUserMsg); u != "" && !strings.Contains(strings.Join(msg, " "), u) {
			msg = append(msg, u)
		}
		e.Message = strings.Join(msg, ": ")
		if a.FBTraceID != "" {
			e.Message += " (fbtrace_id " + a.FBTraceID + ")"
		}
		if a.Code != nil {
			e.Code = strconv.Itoa(*a.Code)
			cls = classOf(*a.Code, a.ErrorSubcode)
		}
	}
	if e.Message == "" {
		e.Message = "HTTP " + resp.Status
	} else if e.Code == "" {
		e.Message += fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
	}
	if cls == unknown {
		switch s := resp.StatusCode; {
		case s == http.StatusUnauthorized || s == http.StatusForbidden:
			cls = configuration
		case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500:
			cls = transient
		default:
			// Any other 4xx: Meta judged the request itself.
			cls = permanent
		}
	}
	switch cls {
	case permanent:
		e.Permanent = true
	case configuration:
		e.Err = ErrConfiguration
	}
	return e
}

// retryAfter reads a Retry-After header (see channel.ParseRetryAfter).
func retryAfter(v string, now time.Time) time.Duration { return channel.ParseRetryAfter(v, now) }

// maxRetryAfter is the longest wait honoured (channel.MaxRetryAfter).
const maxRetryAfter = channel.MaxRetryAfter
