package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi/apitest"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
)

// recipients is the contacts module as the pipeline sees it.
type recipients map[string]Recipient

func (r recipients) Recipient(_ context.Context, tenant, id string) (Recipient, error) {
	if rc, ok := r[tenant+"/"+id]; ok {
		return rc, nil
	}
	return Recipient{}, ErrRecipientNotFound
}

// Recipients reads many at once, as the contacts module does, so the tests
// take the pipeline's bulk read path.
func (r recipients) Recipients(ctx context.Context, tenant string, ids []string) (map[string]Recipient, error) {
	out := map[string]Recipient{}
	for _, id := range ids {
		if rc, err := r.Recipient(ctx, tenant, id); err == nil {
			out[id] = rc
		}
	}
	return out, nil
}

// renderer is the templates module as the pipeline sees it: "hello" is an
// email template, "broken" fails.
type renderer struct{}

func (renderer) Render(_ context.Context, _, id string, _ int64, ch string, req RenderRequest) (Content, error) {
	if id != "hello" {
		return Content{}, ErrTemplate
	}
	return Content{Version: 3, Subject: "Hello " + req.Recipient.FirstName,
		HTML: `<html><body><p>Hi ` + req.Recipient.FirstName + `</p><a href="https://example.org/news?a=1&amp;b=2">News</a>
<a class="u" href="` + req.UnsubscribeURL + `">Unsubscribe</a></body></html>`,
		Text: "Hi", Body: "Hi " + req.Recipient.FirstName, From: "alumni@example.edu"}, nil
}

// scripted is a provider that answers with the errors it is given, then
// accepts; it counts its calls.
type scripted struct {
	errs  []error
	calls atomic.Int32
}

func (p *scripted) Send(_ context.Context, m channel.Message) (channel.Receipt, error) {
	n := int(p.calls.Add(1))
	if n <= len(p.errs) {
		return channel.Receipt{}, p.errs[n-1]
	}
	return channel.Receipt{Provider: "scripted", ExternalID: "ext-" + m.ID}, nil
}

type fixture struct {
	t       *testing.T
	db      *store.DB
	svc     *Service
	sandbox *Sandbox
	mux     apitest.Mux
	out     *outboxtest.Reader
	revoked *revocations
}

// revocations is the contacts module's consent, as the pipeline revokes it.
type revocations struct {
	mu   sync.Mutex
	list []string
}

func (r *revocations) RevokeConsent(_ context.Context, tenant, contact, ch, source, proof string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, strings.Join([]string{tenant, contact, ch, source, proof}, "|"))
	return nil
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	revoked := &revocations{}
	if err := db.Migrate(ctx, "outbox", outbox.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, ModuleName, Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := MigrateSandbox(ctx, db); err != nil {
		t.Fatal(err)
	}
	sandbox := NewSandbox(db, event.ChannelEmail)
	if err := sandbox.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sandbox.Stop)
	svc := New(Deps{DB: db, Outbox: outbox.New(db, 0), Log: slog.New(slog.DiscardHandler), Renderer: renderer{},
		Contacts: recipients{
			tenantA + "/ada":    {ContactID: "ada", Email: "ada@example.org", Phone: "+447700900001", FirstName: "Ada", Consent: map[string]bool{"email": true}},
			tenantA + "/noopt":  {ContactID: "noopt", Email: "no@example.org", Consent: map[string]bool{"sms": true}},
			tenantA + "/nomail": {ContactID: "nomail", Phone: "+447700900002", Consent: map[string]bool{"email": true}},
			tenantB + "/bob":    {ContactID: "bob", Email: "bob@example.org", Consent: map[string]bool{"email": true}},
		},
		Providers: map[string]Provider{event.ChannelEmail: sandbox},
		Links:     NewLinks("https://alumni.example.edu", []byte("test key"), true, true),
		Consent:   revoked,
	})
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	mux := apitest.NewMux()
	h := NewHTTP(svc, sandbox)
	h.RegisterRoutes(mux)
	h.RegisterPublicRoutes(mux)
	return &fixture{t: t, db: db, svc: svc, sandbox: sandbox, mux: mux, out: outboxtest.NewReader(t, db), revoked: revoked}
}

func (f *fixture) do(tenant, method, target, body string) apitest.Response {
	f.t.Helper()
	return apitest.Do(f.t, f.mux, tenant, method, target, body)
}

// deliver hands every queued event written since the last call to the
// send handler, as PIPELINE_SEND_CONSUMER would, and returns the events
// the handling wrote.
func (f *fixture) deliver(ctx context.Context) []event.Envelope {
	f.t.Helper()
	var written []event.Envelope
	for _, e := range f.out.Next(f.t) {
		if e.Type != event.PipelineMessageQueued {
			written = append(written, e)
			continue
		}
		if err := f.svc.Handle(event.WithCause(ctx, e), e); err != nil {
			f.t.Fatalf("handle %s: %v", e.Type, err)
		}
	}
	return append(written, f.out.Next(f.t)...)
}

func (f *fixture) message(r apitest.Response, status int) Message {
	f.t.Helper()
	if r.Status != status {
		f.t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	var b struct{ Data Message }
	r.Decode(f.t, &b)
	return b.Data
}

func TestSendThroughTheSandbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello", "sourceId": "welcome-1"}`), http.StatusAccepted)
		if m.Status != StatusQueued || m.Recipient != "ada@example.org" || m.SourceType != SourceAPI {
			t.Fatalf("queued %+v", m)
		}
		envs := f.deliver(ctx)
		if len(envs) != 1 || envs[0].Type != event.PipelineMessageSent {
			t.Fatalf("events %v", outboxtest.Subjects(envs))
		}
		d, _ := event.DecodeData[event.MessageData](envs[0])
		if d.MessageID != m.ID || d.ExternalID != "sbx_"+m.ID || d.RecipientAddress != "ada@example.org" || d.Subject != "Hello Ada" || d.TemplateVersion != 3 {
			t.Fatalf("sent payload %+v", d)
		}
		got := f.message(f.do(tenantA, "GET", "/api/v1/messages/"+m.ID, ""), 200)
		if got.Status != StatusSent || got.SentAt == nil || got.Attempts != 1 || got.Provider != "sandbox" {
			t.Fatalf("stored %+v", got)
		}
		list, err := f.sandbox.List(ctx, tenantA, "", "", 10)
		if err != nil || len(list) != 1 || list[0].Subject != "Hello Ada" || !strings.HasPrefix(list[0].Headers["List-Unsubscribe"], "<https://alumni.example.edu/u/") ||
			list[0].Headers["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click" {
			t.Fatalf("sandbox %+v %v", list, err)
		}
		// The same request again is the same message: nothing new is sent.
		again := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello", "sourceId": "welcome-1"}`), http.StatusOK)
		if again.ID != m.ID || len(f.deliver(ctx)) != 0 {
			t.Fatal("a repeated request made a second message")
		}
		// Redelivering the queued event changes nothing.
		env, _ := event.New(ctx, event.PipelineMessageQueued, event.SourcePipeline, tenantA, messageData(&got))
		if err := f.svc.Handle(ctx, env); err != nil {
			t.Fatal(err)
		}
		if list, _ := f.sandbox.List(ctx, tenantA, "", "", 10); len(list) != 1 || len(f.out.Next(t)) != 0 {
			t.Fatal("a redelivery sent again")
		}
		// Tenant B sees neither the message nor the sandbox copy.
		if r := f.do(tenantB, "GET", "/api/v1/messages/"+m.ID, ""); r.Status != 404 {
			t.Fatalf("tenant B reads A's message: %d", r.Status)
		}
		if r := f.do(tenantB, "GET", "/api/v1/sandbox/messages", ""); strings.Contains(string(r.Body), m.ID) {
			t.Fatal("tenant B sees A's sandbox messages")
		}
		if r := f.do(tenantA, "GET", "/api/v1/sandbox/messages?to=ada@example.org", ""); !strings.Contains(string(r.Body), "Hello Ada") {
			t.Fatalf("sandbox listing: %s", r.Body)
		}
	})
}

func TestBlockedMessagesAreRecordedNotSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		if _, err := f.svc.Suppress(ctx, tenantA, "email", "ADA@example.org", SuppressHardBounce); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			body, code string
		}{
			{`{"contactId": "noopt", "channel": "email", "templateId": "hello"}`, "no_consent"},
			{`{"contactId": "ada", "channel": "email", "templateId": "hello"}`, "suppressed"},
			{`{"contactId": "ada", "channel": "sms", "templateId": "hello"}`, "no_consent"},
		}
		for _, c := range cases {
			m := f.message(f.do(tenantA, "POST", "/api/v1/messages", c.body), http.StatusAccepted)
			envs := f.deliver(ctx)
			if len(envs) != 1 || envs[0].Type != event.PipelineMessageFailed {
				t.Fatalf("%s: events %v", c.body, outboxtest.Subjects(envs))
			}
			d, _ := event.DecodeData[event.MessageData](envs[0])
			got := f.message(f.do(tenantA, "GET", "/api/v1/messages/"+m.ID, ""), 200)
			if d.ErrorCode != c.code || got.Status != StatusBlocked || got.ErrorCode != c.code || got.Attempts != 0 {
				t.Fatalf("%s: %+v / %+v", c.body, d, got)
			}
		}
		if list, _ := f.sandbox.List(ctx, tenantA, "", "", 10); len(list) != 0 {
			t.Fatalf("blocked messages reached the provider: %+v", list)
		}
		// A broken template fails the message, without retries.
		f.svc.Unsuppress(ctx, tenantA, "email", "ada@example.org")
		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "broken"}`), http.StatusAccepted)
		f.deliver(ctx)
		if got := f.message(f.do(tenantA, "GET", "/api/v1/messages/"+m.ID, ""), 200); got.Status != StatusFailed || got.ErrorCode != "template_error" {
			t.Fatalf("broken template: %+v", got)
		}
	})
}

func TestEnqueueRefusesBadRequests(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	cases := []struct {
		tenant, body, code string
		status             int
	}{
		{tenantA, `{"contactId": "ada", "channel": "fax", "templateId": "hello"}`, "invalid_field", 400},
		{tenantA, `{"channel": "email", "templateId": "hello"}`, "invalid_field", 400},
		{tenantA, `{"contactId": "nobody", "channel": "email", "templateId": "hello"}`, "contact_not_found", 404},
		{tenantB, `{"contactId": "ada", "channel": "email", "templateId": "hello"}`, "contact_not_found", 404},
		{tenantA, `{"contactId": "nomail", "channel": "email", "templateId": "hello"}`, "no_address", 400},
		{tenantA, `{"contactId": "ada", "channel": "email", "templateId": "hello", "priority": 1}`, "unknown_field", 400},
	}
	for _, c := range cases {
		r := f.do(c.tenant, "POST", "/api/v1/messages", c.body)
		if r.Status != c.status || r.ErrorCode() != c.code {
			t.Errorf("%s: %d %s", c.body, r.Status, r.Body)
		}
	}
	if envs := f.out.Next(t); len(envs) != 0 {
		t.Fatalf("refused requests published %v", outboxtest.Subjects(envs))
	}
}

// TestQueuedByEventOnce: campaigns queue by event; duplicates of the same
// send key, even with other message ids, make one message, sent once.
func TestQueuedByEventOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		for i := range 3 {
			env, err := event.New(ctx, event.PipelineMessageQueued, "campaigns-service", tenantA, event.MessageData{
				MessageID: event.NewID(), Channel: "email", ContactID: "ada", RecipientAddress: "ada@example.org",
				SourceType: event.MessageSourceCampaign, SourceID: "spring", TemplateID: "hello", SourceName: "Spring"})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.svc.Handle(ctx, env); err != nil {
				t.Fatalf("delivery %d: %v", i, err)
			}
		}
		if list, _ := f.sandbox.List(ctx, tenantA, "", "", 10); len(list) != 1 {
			t.Fatalf("%d messages sent for one send key", len(list))
		}
		if envs := f.out.Next(t); len(envs) != 1 || envs[0].Type != event.PipelineMessageSent {
			t.Fatalf("events %v", outboxtest.Subjects(envs))
		}
	})
}

func TestProviderErrorsRetryOrFail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		transient := &channel.Error{Provider: "scripted", Code: "451", Message: "try later"}
		p := &scripted{errs: []error{transient, transient}}
		f.svc.Providers = map[string]Provider{"email": p}
		m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello"}`), http.StatusAccepted)
		queued := f.out.Next(t)[0]
		for attempt := 1; attempt <= 3; attempt++ {
			err := f.svc.Handle(bus.WithAttempt(context.Background(), attempt, 3), queued)
			got, _ := f.svc.Get(context.Background(), tenantA, m.ID)
			switch attempt {
			case 1, 2:
				if !errors.Is(err, transient) || got.Status != StatusQueued || got.Attempts != attempt || got.ErrorCode != "scripted:451" {
					t.Fatalf("attempt %d: %v, %+v", attempt, err, got)
				}
			case 3:
				if err != nil || got.Status != StatusSent || got.ExternalID != "ext-"+m.ID || got.Attempts != 3 || got.ErrorCode != "" {
					t.Fatalf("attempt 3: %v, %+v", err, got)
				}
			}
		}
		if p.calls.Load() != 3 {
			t.Fatalf("%d provider calls, want 3", p.calls.Load())
		}
		f.out.Next(t)
		// A configuration error (bad credentials) stays queued even on the
		// last attempt, for its dead letter to be replayed once fixed.
		f.svc.Providers = map[string]Provider{"email": &scripted{errs: []error{&channel.Error{Provider: "scripted", Code: "535", Err: channel.ErrConfiguration}}}}
		cm := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello", "sourceId": "config"}`), http.StatusAccepted)
		if err := f.svc.Handle(bus.WithAttempt(context.Background(), 3, 3), f.out.Next(t)[0]); !errors.Is(err, channel.ErrConfiguration) {
			t.Fatalf("configuration error on the last attempt: %v", err)
		}
		if got, _ := f.svc.Get(context.Background(), tenantA, cm.ID); got.Status != StatusQueued {
			t.Fatalf("after a configuration error: %+v", got)
		}
		f.out.Next(t)
		// A permanent error fails at once; a transient one on the last
		// attempt fails too.
		for _, c := range []struct {
			err     error
			attempt int
		}{
			{&channel.Error{Provider: "scripted", Code: "550", Message: "no such user", Permanent: true}, 1},
			{transient, 3},
		} {
			f.svc.Providers = map[string]Provider{"email": &scripted{errs: []error{c.err}}}
			m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello"}`), http.StatusAccepted)
			queued := f.out.Next(t)[0]
			if err := f.svc.Handle(bus.WithAttempt(context.Background(), c.attempt, 3), queued); err != nil {
				t.Fatal(err)
			}
			got, _ := f.svc.Get(context.Background(), tenantA, m.ID)
			envs := f.out.Next(t)
			if got.Status != StatusFailed || len(envs) != 1 || envs[0].Type != event.PipelineMessageFailed {
				t.Fatalf("%v: %+v %v", c.err, got, outboxtest.Subjects(envs))
			}
		}
	})
}

// TestCrashWhileSending: a message left in "sending" by a process that
// died is resolved by asking the sandbox, and failed (never resent) with a
// provider that cannot be asked.
func TestCrashWhileSending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		leave := func(accepted bool) (Message, event.Envelope) {
			m := f.message(f.do(tenantA, "POST", "/api/v1/messages", `{"contactId": "ada", "channel": "email", "templateId": "hello"}`), http.StatusAccepted)
			queued := f.out.Next(t)[0]
			stored, _ := f.svc.Get(ctx, tenantA, m.ID)
			stored.Status, stored.Attempts = StatusSending, 1
			if ok, err := setStatus(ctx, db.Writer(), tenantA, stored, StatusQueued); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if accepted {
				if _, err := f.sandbox.Send(ctx, channel.Message{Tenant: tenantA, ID: m.ID, To: "ada@example.org", Subject: "Hello Ada"}); err != nil {
					t.Fatal(err)
				}
			}
			return m, queued
		}
		for _, accepted := range []bool{true, false} {
			m, queued := leave(accepted)
			if err := f.svc.Handle(ctx, queued); err != nil {
				t.Fatal(err)
			}
			got, _ := f.svc.Get(ctx, tenantA, m.ID)
			if got.Status != StatusSent || got.ExternalID != "sbx_"+m.ID {
				t.Fatalf("accepted=%v: %+v", accepted, got)
			}
			f.out.Next(t)
		}
		if list, _ := f.sandbox.List(ctx, tenantA, "", "", 10); len(list) != 2 {
			t.Fatalf("%d sandbox messages, want 2 (each once)", len(list))
		}
		f.out.Next(t)
		f.svc.Providers = map[string]Provider{"email": &scripted{}}
		m, queued := leave(false)
		if err := f.svc.Handle(ctx, queued); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.svc.Get(ctx, tenantA, m.ID); got.Status != StatusFailed || got.ErrorCode != "outcome_unknown" {
			t.Fatalf("unknown outcome: %+v", got)
		}
		if n := f.svc.Providers["email"].(*scripted).calls.Load(); n != 0 {
			t.Fatalf("a message of unknown outcome was sent again (%d calls)", n)
		}
	})
}

func TestSuppressionsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		if r := f.do(tenantA, "POST", "/api/v1/suppressions", `{"channel": "email", "address": "Gone@Example.org"}`); r.Status != 201 || !strings.Contains(string(r.Body), `"address":"gone@example.org"`) {
			t.Fatalf("suppress: %d %s", r.Status, r.Body)
		}
		for _, bad := range []string{`{"channel": "fax", "address": "x"}`, `{"channel": "sms", "address": "0207"}`, `{"channel": "email", "address": ""}`} {
			if r := f.do(tenantA, "POST", "/api/v1/suppressions", bad); r.Status != 400 {
				t.Errorf("%s: %d", bad, r.Status)
			}
		}
		if r := f.do(tenantB, "GET", "/api/v1/suppressions", ""); strings.Contains(string(r.Body), "gone@") {
			t.Fatal("tenant B sees A's suppressions")
		}
		if r := f.do(tenantB, "DELETE", "/api/v1/suppressions/email/gone@example.org", ""); r.Status != 404 {
			t.Fatalf("tenant B removes A's suppression: %d", r.Status)
		}
		if r := f.do(tenantA, "GET", "/api/v1/suppressions?channel=email", ""); !strings.Contains(string(r.Body), "gone@example.org") {
			t.Fatalf("list: %s", r.Body)
		}
		if r := f.do(tenantA, "DELETE", "/api/v1/suppressions/email/gone@example.org", ""); r.Status != 204 {
			t.Fatalf("unsuppress: %d %s", r.Status, r.Body)
		}
	})
}

func TestSendTest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		r := f.do(tenantA, "POST", "/api/v1/messages/test", `{"templateId": "hello", "channel": "email", "to": "editor@example.edu", "contactId": "ada"}`)
		var res struct{ Data TestResult }
		r.Decode(t, &res)
		if r.Status != 200 || res.Data.Provider != "sandbox" || res.Data.Subject != "Hello Ada" {
			t.Fatalf("test send: %d %s", r.Status, r.Body)
		}
		list, _ := f.sandbox.List(ctx, tenantA, "editor@example.edu", "", 10)
		if len(list) != 1 || list[0].Subject != "Hello Ada" {
			t.Fatalf("sandbox %+v", list)
		}
		var rows int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM messages`).Scan(&rows); err != nil || rows != 0 {
			t.Fatalf("a test send made %d message rows (%v)", rows, err)
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("a test send published %v", outboxtest.Subjects(envs))
		}
		for _, c := range []struct {
			body, code string
			status     int
		}{
			{`{"templateId": "hello", "channel": "email", "to": "not an address"}`, "invalid_field", 400},
			{`{"templateId": "hello", "channel": "sms", "to": "0207"}`, "invalid_field", 400},
			{`{"templateId": "hello", "channel": "fax", "to": "x@example.org"}`, "invalid_field", 400},
			{`{"templateId": "hello", "channel": "email", "to": "x@example.org", "contactId": "nobody"}`, "contact_not_found", 404},
			{`{"templateId": "broken", "channel": "email", "to": "x@example.org"}`, "template_error", 400},
		} {
			if r := f.do(tenantA, "POST", "/api/v1/messages/test", c.body); r.Status != c.status || r.ErrorCode() != c.code {
				t.Errorf("%s: %d %s", c.body, r.Status, r.Body)
			}
		}
	})
}

// slowProvider takes d to accept a message.
type slowProvider struct{ d time.Duration }

func (p slowProvider) Send(context.Context, channel.Message) (channel.Receipt, error) {
	time.Sleep(p.d)
	return channel.Receipt{Provider: "slow", ExternalID: "x"}, nil
}

// A provider call longer than progressEvery tells the bus the message is
// still being worked on, on every tick, and no more once the call ended.
func TestLongProviderCallReportsProgress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		call     time.Duration
		min, max int32
	}{
		{call: 5 * time.Millisecond, min: 0, max: 0},
		{call: 130 * time.Millisecond, min: 3, max: 6},
	} {
		var ticks atomic.Int32
		s := &Service{progressEvery: 20 * time.Millisecond, progress: func(context.Context) error { ticks.Add(1); return nil }}
		if _, err := s.call(context.Background(), slowProvider{tc.call}, channel.Message{}); err != nil {
			t.Fatal(err)
		}
		got := ticks.Load()
		if got < tc.min || got > tc.max {
			t.Errorf("a %v call reported progress %d times, want %d to %d", tc.call, got, tc.min, tc.max)
		}
		time.Sleep(60 * time.Millisecond)
		if after := ticks.Load(); after != got {
			t.Errorf("a %v call reported progress %d more times after it ended", tc.call, after-got)
		}
	}
}
