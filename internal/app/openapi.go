package app

import (
	_ "embed"
	"net/http"
)

// openAPIDoc describes every route New registers. It is written by hand and
// kept in step with the routes by TestOpenAPIDescribesEveryRoute, which
// fails on any route missing from it or any operation no route serves.
//
//go:embed openapi.json
var openAPIDoc []byte

// openAPIHandler serves the document. It is public: clients and tools read
// it before they hold a key.
func openAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// Changes only with a new release; a short cache still lets a
		// rolling upgrade show through quickly.
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(openAPIDoc)
	})
}
