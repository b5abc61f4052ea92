// Package httpapi is the HTTP edge of the binary: the Server (routing, API-key
// authentication, correlation ids, access logs, metrics, panic recovery,
// health and readiness), the JSON request and response helpers, the one
// mapping from errors to HTTP statuses, and cursor pagination.
//
// Modules register their routes on the Server with HandleAPI (authenticated,
// the tenant in the request context) or Handle (public, e.g. provider
// webhooks that authenticate by signature).
package httpapi
