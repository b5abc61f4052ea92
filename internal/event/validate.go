package event

import (
	"fmt"
	"strings"
)

// checker collects what a payload lacks so that Validate reports every
// missing field at once, each by its JSON name.
type checker struct {
	missing []string
	invalid []string
}

// str requires a non-blank string.
func (c *checker) str(name, value string) {
	if strings.TrimSpace(value) == "" {
		c.missing = append(c.missing, name)
	}
}

// timestamp requires a non-zero timestamp.
func (c *checker) timestamp(name string, t Time) {
	if t.IsZero() {
		c.missing = append(c.missing, name)
	}
}

// nonEmpty requires a map or list of length n to hold something.
func (c *checker) nonEmpty(name string, n int) {
	if n == 0 {
		c.missing = append(c.missing, name)
	}
}

// positive requires n > 0; zero counts as missing.
func (c *checker) positive(name string, n int64) {
	switch {
	case n == 0:
		c.missing = append(c.missing, name)
	case n < 0:
		c.invalid = append(c.invalid, fmt.Sprintf("%s must be positive, got %d", name, n))
	}
}

// nonNegative refuses negative counts and versions; zero is allowed.
func (c *checker) nonNegative(name string, n int64) {
	if n < 0 {
		c.invalid = append(c.invalid, fmt.Sprintf("%s must not be negative, got %d", name, n))
	}
}

// channel requires one of the channels the platform sends on.
func (c *checker) channel(name, value string) {
	switch {
	case strings.TrimSpace(value) == "":
		c.missing = append(c.missing, name)
	case !ValidChannel(value):
		c.invalid = append(c.invalid, fmt.Sprintf("%s %q is not one of %s", name, value, strings.Join(Channels, ", ")))
	}
}

// check records msg when ok is false.
func (c *checker) check(ok bool, msg string) {
	if !ok {
		c.invalid = append(c.invalid, msg)
	}
}

// err returns nil or one error naming every problem found, e.g.
// "contactId is required" or "contactId and tag are required".
func (c *checker) err() error {
	var parts []string
	switch n := len(c.missing); n {
	case 0:
	case 1:
		parts = append(parts, c.missing[0]+" is required")
	default:
		parts = append(parts, strings.Join(c.missing[:n-1], ", ")+" and "+c.missing[n-1]+" are required")
	}
	parts = append(parts, c.invalid...)
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}
