package tenant

import (
	"sync"
	"time"
)

// keyCache remembers recently authenticated keys (by hash) so that every
// API request does not cost a database query. Only successes are cached:
// caching misses would let anyone fill memory with random keys.
//
// Revocation through the Service invalidates the entry at once. A revocation
// made by another instance is seen here within the TTL.
type keyCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]cacheEntry
	// gen counts invalidations. A lookup notes it before reading the
	// database and may store its result only if it is unchanged, so a read
	// that raced with a revocation cannot put the revoked key back.
	gen uint64
}

type cacheEntry struct {
	tenantID string
	expires  time.Time
}

func newKeyCache(ttl time.Duration, max int) *keyCache {
	return &keyCache{ttl: ttl, max: max, entries: map[string]cacheEntry{}}
}

func (c *keyCache) get(hash string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[hash]
	if !ok {
		return "", false
	}
	if !now.Before(e.expires) {
		delete(c.entries, hash)
		return "", false
	}
	return e.tenantID, true
}

func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores hash -> tenantID unless an invalidation happened since gen.
func (c *keyCache) put(hash, tenantID string, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= c.max {
		for h, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, h)
			}
		}
		if len(c.entries) >= c.max {
			// Still full of live entries: start over rather than track
			// recency; a miss costs only one indexed query.
			clear(c.entries)
		}
	}
	c.entries[hash] = cacheEntry{tenantID: tenantID, expires: now.Add(c.ttl)}
}

func (c *keyCache) invalidate(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, hash)
	c.gen++
}
