package tenant

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

var keyPattern = regexp.MustCompile(`^alum_[A-Za-z0-9_-]{43}$`)

// newService migrates db and returns a Service whose clock the test moves.
func newService(t *testing.T, db *store.DB) (*Service, *time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, "tenant", Migrations()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// A second run must be a no-op.
	if err := db.Migrate(ctx, "tenant", Migrations()); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s := New(db, slog.New(slog.DiscardHandler))
	s.now = func() time.Time { return now }
	return s, &now
}

func mustCreate(t *testing.T, s *Service, name string) (Tenant, string) {
	t.Helper()
	tn, key, err := s.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("create tenant %q: %v", name, err)
	}
	return tn, key
}

func wantFault(t *testing.T, err error, kind fault.Kind, code string) {
	t.Helper()
	fe, ok := fault.As(err)
	if !ok || fe.Kind != kind || fe.Code != code {
		t.Fatalf("err = %v, want fault kind %d code %q", err, kind, code)
	}
	if fe.Message == "" {
		t.Fatalf("fault %q has no message", code)
	}
}

func TestCreateAndAuthenticate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db)
		tn, key := mustCreate(t, s, "  Alumni Relations  ")
		if tn.Name != "Alumni Relations" {
			t.Errorf("name = %q, want it trimmed", tn.Name)
		}
		if len(tn.ID) != 36 || tn.ID[14] != '7' {
			t.Errorf("id %q is not a UUIDv7", tn.ID)
		}
		if !keyPattern.MatchString(key) {
			t.Errorf("key %q does not look like alum_ + 43 base64url chars", key)
		}
		got, err := s.Authenticate(ctx, key)
		if err != nil || got != tn.ID {
			t.Fatalf("Authenticate = %q, %v; want %q", got, err, tn.ID)
		}

		fetched, err := s.Get(ctx, tn.ID)
		if err != nil || fetched != tn {
			t.Fatalf("Get = %+v, %v; want %+v", fetched, err, tn)
		}
		other, _ := mustCreate(t, s, "Development Office")
		list, err := s.List(ctx)
		if err != nil || len(list) != 2 || list[0].ID != tn.ID || list[1].ID != other.ID {
			t.Fatalf("List = %+v, %v", list, err)
		}
		keys, err := s.ListKeys(ctx, tn.ID)
		if err != nil || len(keys) != 1 || keys[0].Name != "default" || keys[0].Prefix != key[:12] || keys[0].Revoked() {
			t.Fatalf("ListKeys = %+v, %v", keys, err)
		}
	})
}

func TestKeyStoredOnlyAsHash(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, _ := newService(t, db)
		tn, key := mustCreate(t, s, "Acme University")
		var prefix, hash, name string
		err := db.Reader().QueryRow(`SELECT prefix, key_hash, name FROM api_keys WHERE tenant_id = $1`, tn.ID).Scan(&prefix, &hash, &name)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(key))
		if hash != hex.EncodeToString(sum[:]) {
			t.Errorf("key_hash = %q, want hex SHA-256 of the key", hash)
		}
		if prefix != key[:12] || strings.Contains(hash+prefix+name, key[12:]) {
			t.Errorf("prefix %q / stored columns reveal more than the first 12 characters", prefix)
		}
	})
}

func TestCreateValidatesName(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, _ := newService(t, db)
		tests := []struct {
			name    string
			input   string
			wantErr bool
		}{
			{"empty", "", true},
			{"blank", "   \t", true},
			{"too long", strings.Repeat("a", 201), true},
			{"longest", strings.Repeat("a", 200), false},
			{"200 multibyte characters", strings.Repeat("é", 200), false},
			{"one character", "x", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := s.Create(context.Background(), tt.input)
				if !tt.wantErr {
					if err != nil {
						t.Fatalf("Create(%q): %v", tt.input, err)
					}
					return
				}
				wantFault(t, err, fault.Invalid, "invalid_tenant_name")
			})
		}
	})
}

func TestAuthenticateRejects(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, _ := newService(t, db)
		_, key := mustCreate(t, s, "Acme")
		unknown, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		tests := map[string]string{
			"empty":                   "",
			"prefix only":             "alum_",
			"too short":               key[:len(key)-1],
			"too long":                key + "A",
			"wrong prefix":            "mula_" + key[5:],
			"not base64url":           "alum_" + strings.Repeat("!", 43),
			"standard base64 chars":   "alum_" + strings.Repeat("+", 43),
			"unknown but well-formed": unknown,
		}
		for name, k := range tests {
			t.Run(name, func(t *testing.T) {
				tenantID, err := s.Authenticate(context.Background(), k)
				if tenantID != "" {
					t.Errorf("tenant = %q for a bad key", tenantID)
				}
				wantFault(t, err, fault.Unauthorized, "invalid_api_key")
			})
		}
	})
}

func TestKeysAndRevocation(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db)
		tn, first := mustCreate(t, s, "Acme")
		other, _ := mustCreate(t, s, "Globex")

		k, second, err := s.CreateKey(ctx, tn.ID, " ci ")
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "ci" || k.TenantID != tn.ID || k.Prefix != second[:12] || second == first {
			t.Errorf("CreateKey = %+v", k)
		}
		// Both keys work; the first lookup of each fills the cache.
		for _, key := range []string{first, second} {
			if got, err := s.Authenticate(ctx, key); err != nil || got != tn.ID {
				t.Fatalf("Authenticate = %q, %v", got, err)
			}
		}

		// Another tenant cannot revoke this tenant's key.
		err = s.RevokeKey(ctx, other.ID, k.ID)
		wantFault(t, err, fault.NotFound, "api_key_not_found")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("err %v does not wrap store.ErrNotFound", err)
		}
		if _, err := s.Authenticate(ctx, second); err != nil {
			t.Fatalf("key stopped working after a refused revocation: %v", err)
		}

		if err := s.RevokeKey(ctx, tn.ID, k.ID); err != nil {
			t.Fatal(err)
		}
		// Revoked at once, although its tenant was cached.
		_, err = s.Authenticate(ctx, second)
		wantFault(t, err, fault.Unauthorized, "invalid_api_key")
		if got, err := s.Authenticate(ctx, first); err != nil || got != tn.ID {
			t.Fatalf("the other key stopped working: %q, %v", got, err)
		}
		if err := s.RevokeKey(ctx, tn.ID, k.ID); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
		keys, err := s.ListKeys(ctx, tn.ID)
		if err != nil || len(keys) != 2 || keys[0].Revoked() || !keys[1].Revoked() {
			t.Fatalf("ListKeys after revoke = %+v, %v", keys, err)
		}

		wantFault(t, s.RevokeKey(ctx, tn.ID, "no-such-key"), fault.NotFound, "api_key_not_found")
	})
}

func TestUnknownTenant(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newService(t, db)
		_, err := s.Get(ctx, "0190aaaa-0000-7000-8000-000000000000")
		wantFault(t, err, fault.NotFound, "tenant_not_found")
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("err %v does not wrap store.ErrNotFound", err)
		}
		_, _, err = s.CreateKey(ctx, "missing", "ci")
		wantFault(t, err, fault.NotFound, "tenant_not_found")
		_, err = s.ListKeys(ctx, "missing")
		wantFault(t, err, fault.NotFound, "tenant_not_found")

		tn, _ := mustCreate(t, s, "Acme")
		_, _, err = s.CreateKey(ctx, tn.ID, strings.Repeat("k", 201))
		wantFault(t, err, fault.Invalid, "invalid_key_name")
	})
}

// TestCacheTTL shows what another instance sees: a revocation written
// behind this Service's back is honoured once the cached entry expires.
func TestCacheTTL(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, now := newService(t, db)
		tn, key := mustCreate(t, s, "Acme")
		if _, err := s.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Writer().Exec(`UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2`, now.UnixMilli(), tn.ID); err != nil {
			t.Fatal(err)
		}
		*now = now.Add(CacheTTL - time.Second)
		if got, err := s.Authenticate(ctx, key); err != nil || got != tn.ID {
			t.Fatalf("within the TTL: %q, %v; want the cached tenant", got, err)
		}
		*now = now.Add(2 * time.Second)
		_, err := s.Authenticate(ctx, key)
		wantFault(t, err, fault.Unauthorized, "invalid_api_key")
	})
}

func TestCacheDropsRacingPut(t *testing.T) {
	t.Parallel()
	c := newKeyCache(time.Minute, 2)
	now := time.Now()
	gen := c.generation()
	c.invalidate("h1") // a revocation lands while a lookup is reading the database
	c.put("h1", "t1", now, gen)
	if _, ok := c.get("h1", now); ok {
		t.Fatal("a lookup that raced with a revocation re-cached the key")
	}
	gen = c.generation()
	for _, h := range []string{"a", "b", "c"} {
		c.put(h, "t", now, gen)
	}
	if len(c.entries) > 2 {
		t.Errorf("cache holds %d entries, max 2", len(c.entries))
	}
	if tenantID, ok := c.get("c", now); !ok || tenantID != "t" {
		t.Error("latest entry missing after eviction")
	}
}
