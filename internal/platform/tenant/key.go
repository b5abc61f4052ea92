package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

const (
	// KeyPrefix starts every API key, so a leaked key is recognisable (and
	// findable by secret scanners).
	KeyPrefix = "alum_"
	keyBytes  = 32
	// keyLen is the prefix plus 32 bytes in unpadded base64url (43 chars).
	keyLen = len(KeyPrefix) + 43
	// displayLen is how much of a key is kept in clear for display: the
	// prefix and 7 random characters, far too few to guess the rest from.
	displayLen = 12
)

// newKey returns a fresh random API key.
func newKey() (string, error) {
	b := make([]byte, keyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// wellFormed reports whether key has the shape newKey produces, so that
// garbage is refused without a database query.
func wellFormed(key string) bool {
	if len(key) != keyLen || !strings.HasPrefix(key, KeyPrefix) {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(key[len(KeyPrefix):])
	return err == nil && len(b) == keyBytes
}

// hashKey is the stored form of a key: hex SHA-256 of the whole key. A fast
// unsalted hash is right here, unlike for passwords: keys carry 256 random
// bits, so no dictionary or brute-force search over hashes is feasible, and
// a slow KDF would only add its cost to every API request. Being
// deterministic, the hash is also the lookup key (unique index).
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
