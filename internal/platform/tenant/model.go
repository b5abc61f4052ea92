package tenant

import "time"

// Tenant is one organisation using the platform; every other module's data
// is partitioned by its ID.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// APIKey describes an issued key. The key itself is never stored; Prefix
// (its first characters) lets people tell their keys apart.
type APIKey struct {
	ID        string     `json:"id"`
	TenantID  string     `json:"tenantId"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// Revoked reports whether the key no longer authenticates.
func (k APIKey) Revoked() bool { return k.RevokedAt != nil }
