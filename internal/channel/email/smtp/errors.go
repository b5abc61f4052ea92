package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// ErrConfiguration is wrapped by failures that come from the server set-up
// or ours rather than from the message: no STARTTLS where it is required,
// a certificate that does not verify, no AUTH mechanism we speak, rejected
// credentials, a server that wants AUTH when no Username is set.
//
// They are transient on purpose: every message would fail alike until an
// operator fixes the setting, and a permanent failure would fail a whole
// campaign for good, while transient ones end, after the pipeline's
// retries, in the dead-letter queue and can be replayed. Test for it with
// errors.Is to alert or pause the channel.
var ErrConfiguration = channel.ErrConfiguration

// ErrUnknownOutcome is wrapped by failures after the whole message was
// written, while waiting for the server's reply to the final ".": the
// server may or may not have taken the message, and SMTP cannot tell.
// They are transient (RFC 5321 §4.1.1.4 expects the client to retry, and
// a duplicate is the lesser harm than a lost message); a caller that would
// rather not risk a duplicate can test for it with errors.Is.
var ErrUnknownOutcome = channel.ErrUnknownOutcome

// ErrClosed is wrapped by Sends on a closed Sender.
var ErrClosed = errors.New("smtp sender closed")

// stage is the part of the exchange that failed.
type stage string

const (
	stageConnect stage = "connect"
	stageMail    stage = "MAIL FROM"
	stageRcpt    stage = "RCPT TO"
	stageData    stage = "DATA"
	stageBody    stage = "message transfer"
	stageEnd     stage = "end of data"
)

// errNoStartTLS and errNoAuthMech are refusals of our configuration by
// the server.
var (
	errNoStartTLS = fmt.Errorf("server does not offer STARTTLS, and Security is starttls: %w", ErrConfiguration)
	errNoAuthMech = fmt.Errorf("server offers neither AUTH PLAIN nor AUTH LOGIN: %w", ErrConfiguration)
)

// classify turns a failure of the exchange into a *channel.Error.
//
// SMTP replies: 4xx are transient, 5xx permanent, with these exceptions
// (transient):
//   - any reply while connecting (greeting, EHLO, STARTTLS, AUTH): it is
//     about the session, not this message;
//   - 530 (authentication required, RFC 4954): configuration;
//   - mailbox full: an enhanced code X.2.2 (RFC 3463), and 552 unless its
//     enhanced code says the message itself is too large (X.3.4, X.2.3).
//     RFC 5321 defines 552 as "exceeded storage allocation", and at RCPT
//     asks clients to treat it as 452 (§4.5.3.1.10). A full mailbox is a
//     soft bounce: it empties, and a permanent failure would count the
//     address as bad.
//
// Anything that is not a reply (network errors, timeouts, TLS failures,
// a dropped connection) is transient.
func classify(ctx context.Context, st stage, err error) *channel.Error {
	ce := &channel.Error{Provider: Provider}
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		ce.Code = strconv.Itoa(se.Code)
		ce.Message = replyText(se)
		ce.Permanent = permanentReply(st, se)
		switch {
		case st == stageConnect && !errors.Is(err, ErrConfiguration) && se.Code/100 == 5 && se.Code != 554:
			// EHLO or AUTH refused for good: our name or credentials.
			ce.Err = fmt.Errorf("%s refused: %w", st, ErrConfiguration)
		case se.Code == 530:
			ce.Err = fmt.Errorf("%s refused: %w", st, ErrConfiguration)
		case errors.Is(err, ErrConfiguration):
			ce.Err = err
		default:
			ce.Err = fmt.Errorf("%s refused", st)
		}
		return ce
	}
	if cerr := ctx.Err(); cerr != nil {
		// The deadline or cancellation cut the exchange: say so, so that
		// errors.Is finds context.Canceled / DeadlineExceeded.
		ce.Message = err.Error()
		ce.Err = fmt.Errorf("%s: %w", st, cerr)
		if st == stageEnd {
			ce.Err = fmt.Errorf("%s: %w: %w", st, ErrUnknownOutcome, cerr)
		}
		return ce
	}
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	switch {
	case errors.As(err, &certErr), errors.As(err, &recErr):
		ce.Err = fmt.Errorf("%s: %w: %w", st, ErrConfiguration, err)
	case st == stageEnd:
		ce.Err = fmt.Errorf("%s: %w: %w", st, ErrUnknownOutcome, err)
	default:
		ce.Err = fmt.Errorf("%s: %w", st, err)
	}
	return ce
}

func permanentReply(st stage, se *gosmtp.SMTPError) bool {
	if se.Code/100 != 5 || st == stageConnect || se.Code == 530 {
		return false
	}
	ec := se.EnhancedCode
	if ec[1] == 2 && ec[2] == 2 { // X.2.2 mailbox full
		return false
	}
	if se.Code == 552 {
		tooBig := ec[1] == 3 && ec[2] == 4 || ec[1] == 2 && ec[2] == 3
		return tooBig && st != stageRcpt
	}
	return true
}

// replyText is the server's text with its enhanced status code, on one
// line.
func replyText(se *gosmtp.SMTPError) string {
	msg := strings.ReplaceAll(se.Message, "\n", " ")
	ec := se.EnhancedCode
	if ec == gosmtp.EnhancedCodeNotSet || ec == gosmtp.NoEnhancedCode {
		return msg
	}
	return fmt.Sprintf("%d.%d.%d %s", ec[0], ec[1], ec[2], msg)
}

// keepAfter reports whether a connection whose transaction failed with
// err can carry another one (after RSET): the server answered, so the
// connection is in a known state, unless it said it is closing (421) or
// the context cut the exchange.
func keepAfter(err error) bool {
	var cut *cancelledErr
	var se *gosmtp.SMTPError
	return !errors.As(err, &cut) && errors.As(err, &se) && se.Code != 421
}

// staleConn reports whether a failure on the first command of a reused
// connection means the connection died while idle (the server closed it,
// or answers 421 for its idle timeout): nothing of the message was taken,
// so it is safe to try once more on a new connection.
func staleConn(st stage, err error) bool {
	if st != stageMail {
		return false
	}
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		return se.Code == 421
	}
	// A timeout is a slow server, not a dead connection: trying again
	// would only double the wait.
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}
