package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// follow requests a link of the stored email as a recipient's client
// would, without following redirects.
func (f *fixture) follow(method, link, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	path := strings.TrimPrefix(link, "https://alumni.example.edu")
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec
}

var (
	clickLink = regexp.MustCompile(`href="(https://alumni\.example\.edu/t/c/[^"]+)"`)
	openLink  = regexp.MustCompile(`src="(https://alumni\.example\.edu/t/o/[^"]+)"`)
	unsubLink = regexp.MustCompile(`class="u" href="(https://alumni\.example\.edu/u/[^"]+)"`)
)

func TestTrackingAndUnsubscribe(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello"}`), http.StatusAccepted)
		f.deliver(ctx)
		list, _ := f.sandbox.List(ctx, tenantA, "", "", 1)
		html := list[0].HTML
		click, open, unsub := clickLink.FindStringSubmatch(html), openLink.FindStringSubmatch(html), unsubLink.FindStringSubmatch(html)
		if click == nil || open == nil || unsub == nil || strings.Contains(html, `href="https://example.org/news`) {
			t.Fatalf("the email is not tracked as expected:\n%s", html)
		}
		if list[0].Headers["List-Unsubscribe"] != "<"+unsub[1]+">" {
			t.Fatalf("List-Unsubscribe %q, link %q", list[0].Headers["List-Unsubscribe"], unsub[1])
		}

		rec := f.follow("GET", click[1], "")
		if rec.Code != http.StatusFound || rec.Header().Get("Location") != "https://example.org/news?a=1&b=2" {
			t.Fatalf("click: %d -> %q", rec.Code, rec.Header().Get("Location"))
		}
		rec = f.follow("GET", open[1], "")
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/gif" || rec.Body.Len() < 30 {
			t.Fatalf("open pixel: %d %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		envs := f.out.Next(t)
		if got := outboxtest.Subjects(envs); len(got) != 2 || got[0] != event.PipelineMessageClicked || got[1] != event.PipelineMessageOpened {
			t.Fatalf("tracking events %v", got)
		}
		if d, _ := event.DecodeData[event.MessageData](envs[0]); d.URL != "https://example.org/news?a=1&b=2" || d.MessageID != m.ID || d.OccurredAt.IsZero() {
			t.Fatalf("clicked payload %+v", d)
		}

		// A tampered or forged link goes nowhere and records nothing: no open redirect.
		forged := strings.Replace(click[1], "/t/c/", "/t/c/x", 1)
		for _, link := range []string{forged, click[1] + "x", "https://alumni.example.edu/t/c/aHR0cHM6Ly9ldmlsLmV4YW1wbGUv.AAAA", strings.Replace(open[1], "/t/o/", "/t/c/", 1)} {
			if rec := f.follow("GET", link, ""); rec.Code != http.StatusNotFound || rec.Header().Get("Location") != "" {
				t.Errorf("forged click %s: %d %q", link, rec.Code, rec.Header().Get("Location"))
			}
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("forged links published %v", outboxtest.Subjects(envs))
		}

		// The unsubscribe page changes nothing until confirmed.
		if rec := f.follow("GET", unsub[1], ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), "a**@example.org") || !strings.Contains(rec.Body.String(), "<form") {
			t.Fatalf("unsubscribe page: %d %s", rec.Code, rec.Body)
		}
		if len(f.revoked.list) != 0 {
			t.Fatal("a GET unsubscribed")
		}
		// RFC 8058 one-click POST.
		if rec := f.follow("POST", unsub[1], "List-Unsubscribe=One-Click"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "You are unsubscribed") {
			t.Fatalf("one-click unsubscribe: %d %s", rec.Code, rec.Body)
		}
		if len(f.revoked.list) != 1 || f.revoked.list[0] != tenantA+"|ada|email|unsubscribe_link|message "+m.ID {
			t.Fatalf("consent revocations %v", f.revoked.list)
		}
		if rec := f.follow("POST", unsub[1]+"x", ""); rec.Code != http.StatusNotFound {
			t.Fatalf("forged unsubscribe: %d", rec.Code)
		}
		// The next message to the address is blocked as suppressed.
		f.out.Next(t)
		next := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello", "sourceId": "second"}`), http.StatusAccepted)
		f.deliver(ctx)
		if got, _ := f.svc.Get(ctx, tenantA, next.ID); got.Status != StatusBlocked || got.ErrorCode != "suppressed" {
			t.Fatalf("after unsubscribing: %+v", got)
		}
	})
}

// TestUnsubscribeOnce: the first unsubscribe through a message's link
// publishes one pipeline.message.unsubscribed; using the link again, one
// after the other or at once, publishes nothing more. Another message's
// link publishes its own, though the address is suppressed already.
func TestUnsubscribeOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		var ids []string
		for _, src := range []string{"first", "second"} {
			m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello", "sourceId": "`+src+`"}`), http.StatusAccepted)
			ids = append(ids, m.ID)
		}
		f.deliver(ctx)
		links := map[string]string{}
		list, _ := f.sandbox.List(ctx, tenantA, "", "", 10)
		for _, sm := range list {
			if u := unsubLink.FindStringSubmatch(sm.HTML); u != nil {
				links[sm.MessageID] = u[1]
			}
		}
		if len(links) != 2 {
			t.Fatalf("unsubscribe links %v", links)
		}
		f.out.Next(t)

		unsubscribe := func(id, body string) {
			t.Helper()
			if rec := f.follow("POST", links[id], body); rec.Code != 200 || !strings.Contains(rec.Body.String(), "You are unsubscribed") {
				t.Errorf("unsubscribe %s: %d %s", id, rec.Code, rec.Body)
			}
		}
		check := func(id string) {
			t.Helper()
			envs := f.out.Next(t)
			if len(envs) != 1 || envs[0].Type != event.PipelineMessageUnsubscribed {
				t.Fatalf("events %v, want one %s", outboxtest.Subjects(envs), event.PipelineMessageUnsubscribed)
			}
			d, err := event.DecodeData[event.MessageData](envs[0])
			if err != nil || d.MessageID != id || d.Channel != event.ChannelEmail || d.ContactID != "ada" ||
				d.RecipientAddress != "ada@example.org" || d.SourceType != SourceAPI || d.OccurredAt.IsZero() || !d.SendAfter.IsZero() {
				t.Fatalf("unsubscribed payload %+v (%v)", d, err)
			}
		}

		// One-click, then the page's form: one event.
		unsubscribe(ids[0], "List-Unsubscribe=One-Click")
		check(ids[0])
		unsubscribe(ids[0], "")
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("a second unsubscribe published %v", outboxtest.Subjects(envs))
		}
		// The second message's link, used by several requests at once: one event.
		done := make(chan struct{})
		for range 6 {
			go func() {
				defer func() { done <- struct{}{} }()
				unsubscribe(ids[1], "List-Unsubscribe=One-Click")
			}()
		}
		for range 6 {
			<-done
		}
		check(ids[1])
		if sup, err := f.svc.Suppressions(ctx, tenantA, "email", "", 10); err != nil || len(sup) != 1 || sup[0].Reason != SuppressUnsubscribe {
			t.Fatalf("suppressions %+v %v", sup, err)
		}
		// Tenant B's service knows no such message: nothing is published.
		if _, err := f.svc.Unsubscribe(ctx, tenantB, ids[0]); err == nil {
			t.Fatal("tenant B unsubscribed A's message")
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("events %v", outboxtest.Subjects(envs))
		}
	})
}

func TestLinksTokens(t *testing.T) {
	l := NewLinks("https://a.example/", []byte("k1"), true, true)
	other := NewLinks("https://a.example", []byte("k2"), true, true)
	tok := l.token(linkClick, "t1", "m1", "https://x.example/?q=1")
	if tenant, id, target, err := l.parse(linkClick, tok); err != nil || tenant != "t1" || id != "m1" || target != "https://x.example/?q=1" {
		t.Fatalf("parse: %q %q %q %v", tenant, id, target, err)
	}
	for _, bad := range []string{"", ".", tok + "A", "A" + tok, strings.Split(tok, ".")[0]} {
		if _, _, _, err := l.parse(linkClick, bad); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
	if _, _, _, err := other.parse(linkClick, tok); err == nil {
		t.Error("a token signed with another key was accepted")
	}
	if _, _, _, err := l.parse(linkOpen, tok); err == nil {
		t.Error("a click token was accepted as an open token")
	}
	if got := l.Track("t1", "m1", "<p>no links</p>", ""); !strings.Contains(got, "/t/o/") || !strings.HasPrefix(got, "<p>no links</p>") {
		t.Fatalf("pixel without </body>: %s", got)
	}
	off := NewLinks("https://a.example", []byte("k"), false, false)
	if got := off.Track("t", "m", `<a href="https://x.example">x</a>`, ""); got != `<a href="https://x.example">x</a>` {
		t.Fatalf("tracking off changed the HTML: %s", got)
	}
}
