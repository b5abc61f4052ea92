package smtp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Provider is the name of this adapter in receipts and errors.
const Provider = "smtp"

// Connection security.
const (
	// SecurityNone sends in clear text. Only for a relay on the same host
	// or a trusted network; AUTH is refused unless AllowInsecureAuth.
	SecurityNone = "none"
	// SecurityStartTLS upgrades with STARTTLS (RFC 3207), usually on port
	// 587, and refuses to send when the server does not offer it: a server
	// that stops offering STARTTLS is as likely an attacker stripping it as
	// a misconfiguration.
	SecurityStartTLS = "starttls"
	// SecurityTLS is implicit TLS (RFC 8314), usually on port 465.
	SecurityTLS = "tls"
)

// Defaults.
const (
	DefaultPoolSize           = 4
	DefaultMaxMessagesPerConn = 100
	DefaultTimeout            = 30 * time.Second
	DefaultIdleTimeout        = 30 * time.Second
)

// Config says which server to send through and how.
type Config struct {
	// Host and Port of the server. Port defaults to 587 for starttls,
	// 465 for tls and 25 for none.
	Host string
	Port int
	// Security is "starttls" (the default), "tls" or "none".
	Security string
	// Username and Password authenticate with AUTH PLAIN, or LOGIN when
	// the server does not offer PLAIN, when Username is set.
	Username, Password string
	// AllowInsecureAuth allows AUTH on a connection without TLS, which
	// sends the password in clear; refused otherwise.
	AllowInsecureAuth bool
	// TLSConfig is used for STARTTLS and implicit TLS; nil means the
	// system roots. Its ServerName defaults to Host.
	TLSConfig *tls.Config
	// HeloName is the name sent in EHLO; defaults to os.Hostname.
	HeloName string
	// PoolSize is how many connections are kept open and reused (default
	// 4). It is also the most sent at once: further Sends wait for a free
	// connection.
	PoolSize int
	// MaxMessagesPerConn is how many transactions a connection carries
	// before it is closed and replaced (default 100); many servers limit
	// it and answer 421 past the limit.
	MaxMessagesPerConn int
	// Timeout bounds the dial, the TLS handshake and each command, and
	// the wait for the reply after the message (default 30s). A deadline
	// on the Send context shortens it.
	Timeout time.Duration
	// IdleTimeout is how long an unused connection is kept (default 30s).
	// Servers drop idle clients after a while (RFC 5321 asks them to wait
	// 5 minutes, many wait less), and a dropped connection costs a failed
	// command before it is noticed.
	IdleTimeout time.Duration
}

// withDefaults fills in the defaults and checks the result.
func (c Config) withDefaults() (Config, error) {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if c.Security == "" {
		c.Security = SecurityStartTLS
	}
	c.Security = strings.ToLower(c.Security)
	switch c.Security {
	case SecurityStartTLS, SecurityTLS, SecurityNone:
	default:
		bad("smtp: Security %q is not one of starttls, tls, none", c.Security)
	}
	if c.Host == "" {
		bad("smtp: Host is required (the SMTP server's name or address)")
	} else if strings.ContainsAny(c.Host, " \t\r\n/") {
		bad("smtp: Host %q is not a host name or address", c.Host)
	} else if strings.Count(c.Host, ":") == 1 {
		bad("smtp: Host %q has a port; give the port in Port", c.Host)
	} else {
		c.Host = strings.TrimSuffix(strings.TrimPrefix(c.Host, "["), "]")
	}
	if c.Port == 0 {
		switch c.Security {
		case SecurityTLS:
			c.Port = 465
		case SecurityNone:
			c.Port = 25
		default:
			c.Port = 587
		}
	} else if c.Port < 0 || c.Port > 65535 {
		bad("smtp: Port %d is out of range", c.Port)
	}
	if c.Username != "" {
		if c.Password == "" {
			bad("smtp: Password is required with Username")
		}
		if c.Security == SecurityNone && !c.AllowInsecureAuth {
			bad("smtp: Security none with Username would send the password in clear text; use starttls or tls, or set AllowInsecureAuth for a trusted network")
		}
	}
	if c.HeloName == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.HeloName = h
		} else {
			c.HeloName = "localhost"
		}
	}
	if strings.ContainsAny(c.HeloName, " \t\r\n") {
		bad("smtp: HeloName %q must be a single host name", c.HeloName)
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultPoolSize
	} else if c.PoolSize < 0 {
		bad("smtp: PoolSize %d must be positive", c.PoolSize)
	}
	if c.MaxMessagesPerConn == 0 {
		c.MaxMessagesPerConn = DefaultMaxMessagesPerConn
	} else if c.MaxMessagesPerConn < 0 {
		bad("smtp: MaxMessagesPerConn %d must be positive", c.MaxMessagesPerConn)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	} else if c.Timeout < 0 {
		bad("smtp: Timeout %v must be positive", c.Timeout)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	} else if c.IdleTimeout < 0 {
		bad("smtp: IdleTimeout %v must be positive", c.IdleTimeout)
	}
	return c, errors.Join(problems...)
}
