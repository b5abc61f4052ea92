package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
)

// IdempotencyHeader is the header a client sends to make a POST safe to
// retry.
const IdempotencyHeader = "Idempotency-Key"

// maxIdempotentBody bounds the body of a request sent with an
// Idempotency-Key: it is read whole to fingerprint it. Bulk uploads
// (imports) are retried by re-running them in upsert mode instead.
const maxIdempotentBody = 1 << 20

// StoredResponse is the first answer to an idempotent request.
type StoredResponse struct {
	Fingerprint string
	// Status is 0 while the first request is still being handled.
	Status      int
	ContentType string
	Location    string
	Body        []byte
}

// IdempotencyStore keeps the answers of requests sent with an
// Idempotency-Key, per tenant.
type IdempotencyStore interface {
	// Begin claims key for a request; started is false when the key has an
	// answer (or a request still running), which it returns.
	Begin(ctx context.Context, tenant, key, fingerprint string) (StoredResponse, bool, error)
	Complete(ctx context.Context, tenant, key string, r StoredResponse) error
	Release(ctx context.Context, tenant, key string) error
}

// idempotent wraps an authenticated POST handler: with an Idempotency-Key,
// the first answer (success or client error) is stored and replayed to
// every retry with the same key and body; the same key with a different
// request is refused, and a server error releases the key for a retry.
func (s *Server) idempotent(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(IdempotencyHeader)
		if key == "" || s.opts.Idempotency == nil {
			h(w, r)
			return
		}
		if len(key) > 255 || !printableASCII(key) {
			WriteError(w, r, fault.New(fault.Invalid, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters, e.g. a UUID"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxIdempotentBody))
		if err != nil {
			WriteError(w, r, fault.Wrap(err, fault.TooLarge, "idempotent_body_too_large",
				"a request with an Idempotency-Key may carry at most %d bytes; send larger uploads without one (an import re-run in upsert mode is safe)", maxIdempotentBody))
			return
		}
		sum := sha256.New()
		io.WriteString(sum, r.Method+" "+r.URL.RequestURI()+"\n"+r.Header.Get("Content-Type")+"\n")
		sum.Write(body)
		fingerprint := hex.EncodeToString(sum.Sum(nil))
		tenant := TenantID(r.Context())
		stored, started, err := s.opts.Idempotency.Begin(r.Context(), tenant, key, fingerprint)
		switch {
		case err != nil:
			WriteError(w, r, err)
			return
		case !started && stored.Fingerprint != fingerprint:
			WriteError(w, r, fault.New(fault.Conflict, "idempotency_key_reused",
				"this Idempotency-Key was used for a different request; use a new key for each distinct request"))
			return
		case !started && stored.Status == 0:
			w.Header().Set("Retry-After", "1")
			WriteError(w, r, fault.New(fault.Conflict, "idempotency_key_in_use",
				"a request with this Idempotency-Key is still being handled; retry in a moment to get its answer"))
			return
		case !started:
			replay(w, stored)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		ctx := context.WithoutCancel(r.Context())
		if rec.status >= 500 {
			if err := s.opts.Idempotency.Release(ctx, tenant, key); err != nil {
				s.log.ErrorContext(ctx, "release idempotency key", "err", err)
			}
			return
		}
		err = s.opts.Idempotency.Complete(ctx, tenant, key, StoredResponse{Fingerprint: fingerprint, Status: rec.status,
			ContentType: rec.Header().Get("Content-Type"), Location: rec.Header().Get("Location"), Body: rec.body.Bytes()})
		if err != nil {
			s.log.ErrorContext(ctx, "store idempotent answer", "err", err)
		}
	}
}

func replay(w http.ResponseWriter, r StoredResponse) {
	if r.ContentType != "" {
		w.Header().Set("Content-Type", r.ContentType)
	}
	if r.Location != "" {
		w.Header().Set("Location", r.Location)
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.Header().Set("Content-Length", strconv.Itoa(len(r.Body)))
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// recorder passes a response through while keeping a copy of it.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
