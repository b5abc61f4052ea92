package tenant

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

const (
	// CacheTTL bounds how long another instance may keep accepting a key
	// after it was revoked elsewhere.
	CacheTTL     = 30 * time.Second
	cacheMax     = 10_000
	maxNameRunes = 200
	// firstKeyName names the key issued with a new tenant.
	firstKeyName = "default"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations are the tenant tables; apply them with
// db.Migrate(ctx, "tenant", tenant.Migrations()).
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return sub
}

// Service manages tenants and API keys and authenticates keys.
type Service struct {
	db    *store.DB
	log   *slog.Logger
	now   func() time.Time
	cache *keyCache
}

// New returns a Service on db, whose tenant migrations must have run.
func New(db *store.DB, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{db: db, log: logger, now: time.Now, cache: newKeyCache(CacheTTL, cacheMax)}
}

// Create adds a tenant named name (trimmed, 1-200 characters) with a first
// API key, and returns the key in clear: it is not stored and cannot be
// shown again.
func (s *Service) Create(ctx context.Context, name string) (Tenant, string, error) {
	name, err := checkName("tenant name", "invalid_tenant_name", name, 1)
	if err != nil {
		return Tenant{}, "", err
	}
	t := Tenant{ID: event.NewID(), Name: name, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	var key string
	var k APIKey
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`,
			t.ID, t.Name, t.CreatedAt.UnixMilli()); err != nil {
			return fmt.Errorf("insert tenant: %w", err)
		}
		var err error
		k, key, err = s.insertKey(ctx, tx, t.ID, firstKeyName)
		return err
	})
	if err != nil {
		return Tenant{}, "", fmt.Errorf("create tenant %q: %w", name, err)
	}
	s.log.InfoContext(ctx, "tenant created", "tenantId", t.ID, "keyId", k.ID, "keyPrefix", k.Prefix)
	return t, key, nil
}

// CreateKey issues another API key for tenantID (name is optional, up to
// 200 characters) and returns it with the key in clear, shown once.
func (s *Service) CreateKey(ctx context.Context, tenantID, name string) (APIKey, string, error) {
	name, err := checkName("key name", "invalid_key_name", name, 0)
	if err != nil {
		return APIKey{}, "", err
	}
	var key string
	var k APIKey
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = $1`, tenantID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return tenantNotFound(tenantID)
		}
		if err != nil {
			return fmt.Errorf("find tenant: %w", err)
		}
		k, key, err = s.insertKey(ctx, tx, tenantID, name)
		return err
	})
	if err != nil {
		return APIKey{}, "", fmt.Errorf("create key for tenant %s: %w", tenantID, err)
	}
	s.log.InfoContext(ctx, "api key created", "tenantId", tenantID, "keyId", k.ID, "keyPrefix", k.Prefix)
	return k, key, nil
}

func (s *Service) insertKey(ctx context.Context, tx *sql.Tx, tenantID, name string) (APIKey, string, error) {
	key, err := newKey()
	if err != nil {
		return APIKey{}, "", fmt.Errorf("generate key: %w", err)
	}
	k := APIKey{ID: event.NewID(), TenantID: tenantID, Name: name, Prefix: key[:displayLen],
		CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, k.TenantID, k.Name, k.Prefix, hashKey(key), k.CreatedAt.UnixMilli()); err != nil {
		return APIKey{}, "", fmt.Errorf("insert api key: %w", err)
	}
	return k, key, nil
}

// RevokeKey stops keyID of tenantID from authenticating, at once on this
// instance and within CacheTTL on others. Revoking a revoked key is a no-op.
func (s *Service) RevokeKey(ctx context.Context, tenantID, keyID string) error {
	var hash string
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT key_hash, revoked_at FROM api_keys WHERE id = $1 AND tenant_id = $2`,
			keyID, tenantID).Scan(&hash, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return fault.Wrap(store.ErrNotFound, fault.NotFound, "api_key_not_found",
				"tenant %s has no API key %s; list its keys to find the id", tenantID, keyID)
		}
		if err != nil {
			return fmt.Errorf("find api key: %w", err)
		}
		if revoked.Valid {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3`,
			s.now().UnixMilli(), keyID, tenantID)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke api key %s: %w", keyID, err)
	}
	// After the commit, so that no lookup can re-cache the key from the old row.
	s.cache.invalidate(hash)
	s.log.InfoContext(ctx, "api key revoked", "tenantId", tenantID, "keyId", keyID)
	return nil
}

// ListKeys returns tenantID's keys, revoked ones included, oldest first.
func (s *Service) ListKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	if _, err := s.Get(ctx, tenantID); err != nil {
		return nil, err
	}
	rows, err := s.db.Reader().QueryContext(ctx,
		`SELECT id, tenant_id, name, prefix, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var keys []APIKey
	for rows.Next() {
		var k APIKey
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.TenantID, &k.Name, &k.Prefix, &created, &revoked); err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		k.CreatedAt = time.UnixMilli(created).UTC()
		if revoked.Valid {
			at := time.UnixMilli(revoked.Int64).UTC()
			k.RevokedAt = &at
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// List returns all tenants, oldest first. Tenants are few (one per
// organisation), so the list is not paginated.
func (s *Service) List(ctx context.Context) ([]Tenant, error) {
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT id, name, created_at FROM tenants ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		var t Tenant
		var created int64
		if err := rows.Scan(&t.ID, &t.Name, &created); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		t.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	return out, nil
}

// Get returns the tenant with id, or a fault.NotFound wrapping
// store.ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Tenant, error) {
	t := Tenant{ID: id}
	var created int64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT name, created_at FROM tenants WHERE id = $1`, id).Scan(&t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, tenantNotFound(id)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	t.CreatedAt = time.UnixMilli(created).UTC()
	return t, nil
}

// Authenticate returns the tenant that key belongs to. A malformed, unknown
// or revoked key is a fault.Unauthorized with code invalid_api_key, the same
// for all three so a caller learns nothing about which keys exist.
func (s *Service) Authenticate(ctx context.Context, key string) (string, error) {
	if !wellFormed(key) {
		return "", invalidKey()
	}
	hash := hashKey(key)
	if tenantID, ok := s.cache.get(hash, s.now()); ok {
		return tenantID, nil
	}
	gen := s.cache.generation()
	var tenantID string
	var revoked sql.NullInt64
	err := s.db.Reader().QueryRowContext(ctx, `SELECT tenant_id, revoked_at FROM api_keys WHERE key_hash = $1`, hash).
		Scan(&tenantID, &revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked.Valid) {
		return "", invalidKey()
	}
	if err != nil {
		// Not a 401: the key may be fine, and the client should retry.
		return "", fault.Wrap(err, fault.Unavailable, "auth_unavailable", "the API key could not be checked right now; retry shortly")
	}
	s.cache.put(hash, tenantID, s.now(), gen)
	return tenantID, nil
}

func invalidKey() error {
	return fault.New(fault.Unauthorized, "invalid_api_key",
		"the API key is unknown or revoked; send a current key as 'Authorization: Bearer alum_...' (create one with `alumoutreach tenant key create`)")
}

func tenantNotFound(id string) error {
	return fault.Wrap(store.ErrNotFound, fault.NotFound, "tenant_not_found",
		"tenant %q does not exist; list tenants to find its id", id)
}

// checkName trims name and checks it has min to 200 characters.
func checkName(what, code, name string, min int) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	switch {
	case n < min:
		return "", fault.New(fault.Invalid, code, "%s is empty; give 1 to %d characters", what, maxNameRunes)
	case n > maxNameRunes:
		return "", fault.New(fault.Invalid, code, "%s has %d characters; shorten it to at most %d", what, n, maxNameRunes)
	}
	return name, nil
}
