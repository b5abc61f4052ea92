package contacts

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// Filter selects contacts in a list. Every set field must match.
type Filter struct {
	Email string
	Phone string
	Tag   string
	// AttributeKey and AttributeValue match contacts whose attribute equals
	// the value exactly (same JSON type and value).
	AttributeKey   string
	AttributeValue json.RawMessage
	// ConsentChannel with ConsentStatus "granted", "revoked" or "none" (no
	// decision recorded).
	ConsentChannel string
	ConsentStatus  string
	CreatedAfter   time.Time
	CreatedBefore  time.Time
	UpdatedAfter   time.Time
	UpdatedBefore  time.Time
	// Query searches name, email and phone for a substring, ignoring ASCII case.
	Query string
	// After is the id the page starts after (the cursor).
	After string
	Limit int
}

// ConsentStatuses are the values Filter.ConsentStatus accepts.
var ConsentStatuses = []string{"granted", "revoked", "none"}

// List returns one page of the tenant's contacts (erased ones excluded) in
// id order, which is creation order, and whether more follow.
func (s *Service) List(ctx context.Context, tenant string, f Filter) ([]*Contact, bool, error) {
	q, args := s.st.listQuery(tenant, f)
	out, err := store.Collect(ctx, s.db.Reader(), "list contacts", scanContact, q, args...)
	if err != nil {
		return nil, false, err
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	if err := s.st.loadDetails(ctx, s.db.Reader(), tenant, out); err != nil {
		return nil, false, err
	}
	return out, more, nil
}

type queryBuilder struct {
	where []string
	args  []any
}

// arg adds a parameter and returns its placeholder.
func (b *queryBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *queryBuilder) and(cond string) { b.where = append(b.where, cond) }

func (s sqlStore) listQuery(tenant string, f Filter) (string, []any) {
	var b queryBuilder
	b.and("c.tenant_id = " + b.arg(tenant))
	b.and("c.erased_at IS NULL")
	if f.After != "" {
		b.and("c.id > " + b.arg(f.After))
	}
	if f.Email != "" {
		b.and("c.email = " + b.arg(f.Email))
	}
	if f.Phone != "" {
		b.and("c.phone = " + b.arg(f.Phone))
	}
	if f.Tag != "" {
		b.and("EXISTS (SELECT 1 FROM contact_tags t WHERE t.tenant_id = c.tenant_id AND t.contact_id = c.id AND t.tag = " + b.arg(f.Tag) + ")")
	}
	if f.AttributeKey != "" {
		if s.kind == store.Postgres {
			b.and("c.attributes -> " + b.arg(f.AttributeKey) + " = " + b.arg(string(f.AttributeValue)) + "::jsonb")
		} else {
			// -> renders the stored value as minified JSON, the form
			// attributes are stored and filter values are given in.
			b.and("c.attributes -> " + b.arg(`$."`+f.AttributeKey+`"`) + " = " + b.arg(string(f.AttributeValue)))
		}
	}
	if f.ConsentChannel != "" {
		exists := "EXISTS (SELECT 1 FROM contact_consents k WHERE k.tenant_id = c.tenant_id AND k.contact_id = c.id AND k.channel = " + b.arg(f.ConsentChannel)
		switch f.ConsentStatus {
		case "granted":
			b.and(exists + " AND k.granted = 1)")
		case "revoked":
			b.and(exists + " AND k.granted = 0)")
		default:
			b.and("NOT " + exists + ")")
		}
	}
	for _, r := range []struct {
		col string
		op  string
		t   time.Time
	}{{"created_at", ">", f.CreatedAfter}, {"created_at", "<", f.CreatedBefore}, {"updated_at", ">", f.UpdatedAfter}, {"updated_at", "<", f.UpdatedBefore}} {
		if !r.t.IsZero() {
			b.and("c." + r.col + " " + r.op + " " + b.arg(r.t.UnixMilli()))
		}
	}
	if f.Query != "" {
		p := b.arg("%" + escapeLike(strings.ToLower(f.Query)) + "%")
		b.and("(lower(c.first_name || ' ' || c.last_name) LIKE " + p + ` ESCAPE '\' OR c.email LIKE ` + p + ` ESCAPE '\' OR c.phone LIKE ` + p + ` ESCAPE '\')`)
	}
	q := "SELECT " + prefixed("c.", contactColumns) + " FROM contacts c WHERE " + strings.Join(b.where, " AND ") +
		" ORDER BY c.id LIMIT " + b.arg(f.Limit+1)
	return q, b.args
}

func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ", ")
	for i, p := range parts {
		parts[i] = prefix + p
	}
	return strings.Join(parts, ", ")
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// validChannel reports whether ch names a channel.
func validChannel(ch string) bool { return event.ValidChannel(ch) }
