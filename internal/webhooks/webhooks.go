package webhooks

import (
	"context"
	"crypto/ecdsa"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/prometheus/client_golang/prometheus"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ModuleName is the module's name in schema_migrations.
const ModuleName = "webhooks"

// Migrations returns the module's embedded migrations.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Secrets verify each provider's requests.
type Secrets struct {
	// PublicURL is the server's address as providers call it: Twilio signs
	// the full URL it posted to.
	PublicURL       string
	TwilioAuthToken string
	MetaAppSecret   string
	MetaVerifyToken string
	// SendGridKey verifies the Event Webhook; nil refuses it.
	SendGridKey *ecdsa.PublicKey
	// InboundKey authenticates SendGrid Inbound Parse posts (?key=).
	InboundKey string
}

// Tenants says whether a tenant exists; the app wires the tenant service.
type Tenants interface {
	Exists(ctx context.Context, id string) (bool, error)
}

// Reviews takes a provider's verdict on a WhatsApp template; the app wires
// it to the templates module.
type Reviews interface {
	ApplyReview(ctx context.Context, tenant, name, language string, approved bool, reason, providerID string) (int, error)
}

// Service receives webhooks.
type Service struct {
	db      *store.DB
	ob      *outbox.Outbox
	log     *slog.Logger
	secrets Secrets
	tenants Tenants
	reviews Reviews
	now     func() time.Time
	counts  *prometheus.CounterVec
}

// New returns the service on db (migrated); reg receives its metric,
// webhook_requests_total{provider, outcome}.
func New(db *store.DB, ob *outbox.Outbox, log *slog.Logger, secrets Secrets, tenants Tenants, reviews Reviews, reg prometheus.Registerer) *Service {
	s := &Service{db: db, ob: ob, log: log, secrets: secrets, tenants: tenants, reviews: reviews, now: time.Now,
		counts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "webhook_requests_total",
			Help: "Provider webhook requests by provider and outcome (published, duplicate, ignored, bad_signature, invalid, unknown_tenant)."},
			[]string{"provider", "outcome"})}
	if reg != nil {
		_ = reg.Register(s.counts)
	}
	return s
}

// report is one provider report to publish once.
type report struct {
	key string // the provider's id of the report, for dedupe
	env event.Envelope
}

// publish writes the reports not published before, each with its receipt,
// in one transaction; it returns how many were new.
func (s *Service) publish(ctx context.Context, tenant, provider string, reports []report) (int, error) {
	fresh := 0
	err := s.ob.InTx(ctx, func(tx *sql.Tx, emit outbox.Emit) error {
		fresh = 0
		var envs []event.Envelope
		for _, r := range reports {
			res, err := tx.ExecContext(ctx, `INSERT INTO webhook_receipts (tenant_id, provider, receipt_key, received_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, tenant, provider, r.key, s.now().UnixMilli())
			if err != nil {
				return fmt.Errorf("record webhook receipt: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				envs = append(envs, r.env)
			}
		}
		fresh = len(envs)
		return emit(envs...)
	})
	return fresh, err
}

// Prune forgets receipts older than keep (longer than any provider retries:
// SendGrid retries for 72 hours).
func (s *Service) Prune(ctx context.Context, keep time.Duration) (int64, error) {
	res, err := s.db.Writer().ExecContext(ctx, `DELETE FROM webhook_receipts WHERE received_at < $1`, s.now().Add(-keep).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune webhook receipts: %w", err)
	}
	return res.RowsAffected()
}

// newEvent builds a webhook event of tenant with a correlation of its own.
func newEvent(ctx context.Context, subject, tenant string, data any) (event.Envelope, error) {
	return event.New(event.EnsureCorrelation(ctx), subject, event.SourceWebhooks, tenant, data)
}
