// Package smtp is the email provider adapter that sends through an SMTP
// server (a relay, an ESP's SMTP endpoint, the organisation's own MTA).
// github.com/emersion/go-smtp opens the session (greeting, EHLO, AUTH);
// the mail transactions are ours, pipelined.
//
// # Sending
//
// Sender.Send renders a channel.Message (BuildMessage) and sends it in one
// transaction: MAIL FROM the From address, RCPT TO the To address, DATA.
// The receipt's Provider is "smtp" and its ExternalID the Message-ID
// without angle brackets, <{Message.ID}@{domain of From}>: SMTP has no
// provider id, and bounces and feedback reports quote the Message-ID.
// When the server offers DSN (RFC 3461), MAIL FROM also carries
// ENVID={Message.ID} and RET=HDRS, so delivery status notifications name
// the message too; it carries SIZE (RFC 1870) so that a server refuses an
// oversized message before it is transferred.
//
// When the server offers PIPELINING (RFC 2920), MAIL FROM, RCPT TO and
// DATA go in one write and their replies are read together, then the
// message and its final "." in a second: two round trips a message
// instead of four, which is most of what a send costs on a fast link
// (BenchmarkSendLoopback: 1.7 times the messages per second). Every reply
// of a group is read, so a refusal leaves the connection in step; a server
// that takes DATA after refusing the recipient gets an empty message at
// once. Without PIPELINING each command waits for its reply. go-smtp's
// Client does not pipeline, which is why the transaction is written here.
//
// # The message
//
// BuildMessage writes From (with FromName), To, Reply-To, Subject, Date,
// Message-ID, MIME-Version, the extra Message.Headers (sorted, so the same
// message always renders the same bytes, which previews rely on) and the
// body: multipart/alternative with text/plain then text/html when both
// are given (RFC 2046 puts the preferred alternative last), a single part
// otherwise; UTF-8, quoted-printable, so every line break is CRLF (bare LF
// and CR are normalised) and no body line exceeds 76 characters.
//
// Header values: display names are a quoted string when printable ASCII,
// RFC 2047 Q encoded-words otherwise; Subject is encoded when it has
// non-ASCII or control characters, a word too long for a line, or "=?"
// (which a reader would try to decode). The encoder is ours rather than
// mime.QEncoding because that one never encodes an ASCII string, which
// those last two cases need; it writes literally only the characters
// allowed in an encoded-word in a phrase, so one encoding serves names and
// Subject. Lines are folded at spaces to stay under 78 characters where
// possible and never exceed 998; a structured value (an extra header) with
// a word too long for a line is refused. The quoted-printable encoder is
// ours as well: it does what mime/quotedprintable.Writer does, reading the
// string in place (no copy of each body into a []byte, no writer per part),
// and keeps the line break that the Writer drops in "\r<encoded byte>\n".
//
// Refused with a permanent *channel.Error wrapping ErrInvalidMessage,
// before any connection: CR or LF in any header value, name or address
// (header injection); a header name that is not an RFC 5322 field name; an
// extra header the adapter writes itself (From, To, Subject, Content-*,
// ...) or Cc/Bcc (the envelope has one recipient); an address that is not
// one addr-spec; a message ID that cannot be the left side of a Message-ID;
// a message with no body. Addresses with non-ASCII characters go out with
// SMTPUTF8 (RFC 6531) when the server offers it and are refused (553,
// permanent) when it does not.
//
// # Connections
//
// Config.Security is "starttls" by default: the connection is upgraded
// with STARTTLS and the Send fails when the server does not offer it,
// since an attacker can strip the offer. "tls" is implicit TLS (port 465),
// "none" clear text. AUTH PLAIN (LOGIN when PLAIN is not offered) is used
// when Username is set; New refuses AUTH on a clear-text connection unless
// AllowInsecureAuth. The clear-text part of STARTTLS (greeting, EHLO,
// STARTTLS) is done here and go-smtp takes over on the TLS connection,
// because go-smtp's own STARTTLS says "EHLO localhost" with no way to give
// our name; data the server sends after its STARTTLS reply, before the
// handshake, is refused (STARTTLS command injection).
//
// A Sender keeps up to PoolSize connections and reuses them: a Send takes
// an idle connection (the most recently used, so that the others age out)
// or dials one, and waits, as long as its context allows, when PoolSize
// are busy. A successful transaction leaves the connection ready for the
// next MAIL FROM, so reuse costs no round trip (no NOOP, no RSET). A
// connection is closed with QUIT after MaxMessagesPerConn transactions, by
// the pool after IdleTimeout unused, and at once after a network error, a
// timeout, a cancelled context or a 421 reply. A refused transaction (5xx
// or 4xx at MAIL, RCPT or after DATA) is an answer, not a broken
// connection: RSET puts it back in a known state and it is kept, so a
// list with bad addresses does not cost a TCP and TLS handshake per bad
// address. A Send whose reused connection turns out dead at MAIL FROM
// (the server dropped it while idle) is retried once on a new connection:
// nothing of the message had been sent.
//
// Each write of the exchange, and the wait for the final reply, gets its
// own Config.Timeout; go-smtp sets a deadline around each command of the
// session. The connection under both (guardConn) bounds every deadline by
// the Send's context deadline, replaces "none" by Config.Timeout, and is
// set in the past when the context is cancelled, so a Send returns
// promptly on cancellation and never blocks on a server that stopped
// reading.
//
// # Failures
//
// Every failure is a *channel.Error with Provider "smtp"; for server
// replies Code is the reply code ("550") and Message the server's text
// with its enhanced status code ("5.1.1 User unknown"). See classify for
// the rules; in short:
//   - permanent: 5xx replies to MAIL FROM, RCPT TO (a refused recipient)
//     and the message, and the refusals above;
//   - transient: 4xx replies, network errors, timeouts, TLS failures, a
//     cancelled context (errors.Is finds context.Canceled or
//     DeadlineExceeded), and these 5xx: any reply while connecting (it is
//     about the session, not the message), 530 authentication required,
//     and a full mailbox (enhanced code X.2.2, or 552 unless its enhanced
//     code says the message is too large). A full mailbox is a soft bounce
//     by common practice: it empties, and a permanent failure would mark
//     the address as bad. RFC 5321 §4.5.3.1.10 also asks clients to treat
//     552 at RCPT as 452.
//   - configuration (transient, wrapping ErrConfiguration): STARTTLS not
//     offered, a certificate that does not verify, no usable AUTH
//     mechanism, rejected credentials, a refused EHLO. Every message would
//     fail alike until an operator fixes it; as transient failures they
//     reach the dead-letter queue and can be replayed.
//   - ErrUnknownOutcome (transient) wraps failures after the whole
//     message was written, while waiting for the final reply: the server
//     may have accepted it, and a retry may deliver it twice. SMTP cannot
//     do better; the pipeline may choose not to retry those.
package smtp
