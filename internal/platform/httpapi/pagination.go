package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/alumoutreach/alumoutreach/internal/platform/fault"
)

// ParseLimit reads the limit query parameter: def when absent, otherwise a
// whole number from 1 to maxLimit.
func ParseLimit(r *http.Request, def, maxLimit int) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxLimit {
		return 0, fault.New(fault.Invalid, "invalid_limit", "limit must be a whole number from 1 to %d (got %q)", maxLimit, raw)
	}
	return n, nil
}

// EncodeCursor turns a position (typically the sort key and id of the last
// item returned) into an opaque cursor: base64url JSON. Opaque because
// clients must pass it back unchanged, which leaves us free to change what
// is inside. v must marshal to JSON; anything else is a programming error.
func EncodeCursor(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("httpapi: cursor %T does not marshal to JSON: %v", v, err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor into v. A cursor that is
// not one of ours is a fault.Invalid with code invalid_cursor.
func DecodeCursor(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return invalidCursor(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidCursor(err)
	}
	if dec.More() {
		return invalidCursor(fmt.Errorf("trailing data"))
	}
	return nil
}

func invalidCursor(err error) error {
	return fault.Wrap(err, fault.Invalid, "invalid_cursor",
		"cursor is not one this API issued; pass the nextCursor of the previous page unchanged, or omit cursor to start from the first page")
}

// Page is the JSON shape of one page of a list: the items, and the cursor
// of the next page, absent on the last one.
type Page[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// WritePage writes items as a 200 Page with next as its nextCursor ("" on
// the last page). A nil slice is written as [] so clients can always iterate.
func WritePage[T any](w http.ResponseWriter, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(Page[T]{Data: items, NextCursor: next})
}

// List serves one page of a cursor-paginated list: it reads limit (def
// when absent, at most maxLimit) and cursor (decoded into a C; nil on the
// first page), asks fetch for up to limit+1 items after the cursor, and
// writes the first limit with, when there were more, the cursor that
// cursorOf makes from the last one written.
func List[T, C any](w http.ResponseWriter, r *http.Request, def, maxLimit int,
	fetch func(after *C, limit int) ([]T, error), cursorOf func(last T) C) {
	limit, err := ParseLimit(r, def, maxLimit)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	var after *C
	if raw := r.URL.Query().Get("cursor"); raw != "" {
		after = new(C)
		if err := DecodeCursor(raw, after); err != nil {
			WriteError(w, r, err)
			return
		}
	}
	items, err := fetch(after, limit+1)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = EncodeCursor(cursorOf(items[len(items)-1]))
	}
	WritePage(w, items, next)
}
