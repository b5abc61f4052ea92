package httpapi_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
)

func TestPatternsListsEveryRegisteredRoute(t *testing.T) {
	t.Parallel()
	srv := httpapi.New(httpapi.Options{Addr: "127.0.0.1:0", Auth: fakeAuth{}})
	builtIn := []string{"GET /healthz", "GET /metrics", "GET /readyz"}
	if got := srv.Patterns(); !reflect.DeepEqual(got, builtIn) {
		t.Fatalf("new server: Patterns() = %q, want the built-in routes %q", got, builtIn)
	}
	nop := func(http.ResponseWriter, *http.Request) {}
	srv.HandleAPI("POST /api/v1/things/{id}/archive", nop)
	srv.HandleAPI("GET /api/v1/things", nop)
	srv.Handle("POST /webhooks/sms/status", http.HandlerFunc(nop))
	want := []string{
		"GET /api/v1/things", "GET /healthz", "GET /metrics", "GET /readyz",
		"POST /api/v1/things/{id}/archive", "POST /webhooks/sms/status",
	}
	got := srv.Patterns()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Patterns() = %q, want %q", got, want)
	}
	got[0] = "changed"
	if srv.Patterns()[0] != want[0] {
		t.Fatal("Patterns returned the server's own storage")
	}
}
