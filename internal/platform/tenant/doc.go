// Package tenant owns tenants and their API keys: creating a tenant (with a
// first key, shown once), issuing and revoking further keys, and resolving a
// presented key to its tenant for the HTTP layer (Service implements
// httpapi.Authenticator).
//
// Keys are "alum_" followed by 32 random bytes in unpadded base64url. Only
// the SHA-256 of a key is stored, with its first characters for display.
// The package publishes no events and runs no consumers.
package tenant
