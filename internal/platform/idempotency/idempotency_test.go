package idempotency

import (
	"context"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

func TestClaimAnswerReleaseAndTakeOver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := New(db)
		if _, started, err := s.Begin(ctx, "t", "k", "f1"); err != nil || !started {
			t.Fatalf("first claim: started %v, %v", started, err)
		}
		got, started, err := s.Begin(ctx, "t", "k", "f1")
		if err != nil || started || got.Status != 0 || got.Fingerprint != "f1" {
			t.Fatalf("claim while running: %+v %v %v", got, started, err)
		}
		// The same key in another tenant is another key.
		if _, started, _ := s.Begin(ctx, "u", "k", "f9"); !started {
			t.Fatal("tenant u could not claim its own key")
		}
		want := httpapi.StoredResponse{Fingerprint: "f1", Status: 201, ContentType: "application/json", Location: "/x/1", Body: []byte(`{"data":1}`)}
		if err := s.Complete(ctx, "t", "k", want); err != nil {
			t.Fatal(err)
		}
		got, started, err = s.Begin(ctx, "t", "k", "f1")
		if err != nil || started || got.Status != 201 || string(got.Body) != `{"data":1}` || got.Location != "/x/1" {
			t.Fatalf("answer: %+v %v %v", got, started, err)
		}
		// A released key (server error) runs again.
		s.Begin(ctx, "t", "r", "f2")
		if err := s.Release(ctx, "t", "r"); err != nil {
			t.Fatal(err)
		}
		if _, started, _ := s.Begin(ctx, "t", "r", "f2"); !started {
			t.Fatal("a released key was not claimable")
		}
		// A claim whose process died is taken over after abandonAfter.
		s.abandonAfter = 10 * time.Millisecond
		time.Sleep(20 * time.Millisecond)
		if _, started, _ := s.Begin(ctx, "t", "r", "f2"); !started {
			t.Fatal("an abandoned claim was not taken over")
		}
		if _, started, _ := s.Begin(ctx, "t", "r", "f2"); started {
			t.Fatal("a fresh claim was taken over")
		}
		if n, err := s.Prune(ctx, -time.Hour); err != nil || n != 3 {
			t.Fatalf("prune: %d %v", n, err)
		}
	})
}
