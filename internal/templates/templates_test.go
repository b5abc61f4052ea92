package templates

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi/apitest"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	"github.com/alumoutreach/alumoutreach/internal/templates/render"
)

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
)

// contactsByID is the contacts module as templates see it, for previews.
type contactsByID map[string]render.Contact

func (c contactsByID) TemplateContact(_ context.Context, tenant, id string) (render.Contact, error) {
	if ct, ok := c[tenant+"/"+id]; ok {
		return ct, nil
	}
	return render.Contact{}, ErrContactNotFound
}

type fixture struct {
	t   *testing.T
	svc *Service
	mux apitest.Mux
	out *outboxtest.Reader
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, "outbox", outbox.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, ModuleName, Migrations()); err != nil {
		t.Fatal(err)
	}
	svc := NewService(db, outbox.New(db, 0), slog.New(slog.DiscardHandler))
	mux := apitest.NewMux()
	NewHTTP(svc, contactsByID{tenantA + "/c1": {FirstName: "grace", Email: "grace@example.org", Attributes: map[string]any{"classYear": 1928.0}}}).RegisterRoutes(mux)
	return &fixture{t: t, svc: svc, mux: mux, out: outboxtest.NewReader(t, db)}
}

func (f *fixture) do(tenant, method, target, body string) apitest.Response {
	f.t.Helper()
	return apitest.Do(f.t, f.mux, tenant, method, target, body)
}

func (f *fixture) template(r apitest.Response, status int) Template {
	f.t.Helper()
	if r.Status != status {
		f.t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	var b struct{ Data Template }
	r.Decode(f.t, &b)
	return b.Data
}

const emailTemplate = `{"name": "Spring appeal", "channel": "email", "content": {
	"subject": "{{contact.firstName | capitalize | default: \"Friend\"}}, the {{campaign.name}}",
	"html": "<p>Dear {{contact.firstName | default: \"friend\"}},</p><p>Class of {{contact.attributes.classYear}}</p><a href=\"{{unsubscribeUrl}}\">Unsubscribe</a>",
	"text": "Dear {{contact.firstName}}",
	"from": "alumni@example.edu", "fromName": "Alumni Office",
	"defaults": {"contact.firstName": "alum"}}}`

func TestTemplateLifecycleAndVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tpl := f.template(f.do(tenantA, "POST", "/api/v1/templates", emailTemplate), http.StatusCreated)
		if tpl.Status != StatusCreated || tpl.Version != 1 || tpl.Content.FromName != "Alumni Office" {
			t.Fatalf("created %+v", tpl)
		}
		if envs := f.out.Next(t); len(envs) != 1 || envs[0].Type != event.TemplateCreated {
			t.Fatalf("create events %v", outboxtest.Subjects(envs))
		}
		steps := []struct {
			method, path, body string
			status             int
			wantStatus         string
			wantVersion        int64
			event              string
		}{
			{"POST", "/archive", "", 200, StatusArchived, 1, event.TemplateArchived},
			{"PATCH", "", `{"content": {"subject": "x", "text": "y"}}`, 409, "", 0, ""}, // archived: no edits
			{"POST", "/activate", "", 200, StatusActive, 1, event.TemplateActivated},
			{"POST", "/activate", "", 200, StatusActive, 1, ""}, // again: nothing
			{"PATCH", "", `{"content": {"subject": "New {{campaign.name}}", "text": "Hi {{contact.firstName}}"}}`, 200, StatusActive, 2, event.TemplateUpdated},
			{"PATCH", "", `{"content": {"subject": "New {{campaign.name}}", "text": "Hi {{contact.firstName}}"}}`, 200, StatusActive, 2, ""},
			{"PATCH", "", `{"name": "Spring appeal 2027"}`, 200, StatusActive, 2, event.TemplateUpdated},
			{"DELETE", "", "", 409, "", 0, ""}, // active: in use
			{"PATCH", "", `{"channel": "sms"}`, 400, "", 0, ""},
		}
		for _, s := range steps {
			r := f.do(tenantA, s.method, "/api/v1/templates/"+tpl.ID+s.path, s.body)
			if r.Status != s.status {
				t.Fatalf("%s %s: %d %s", s.method, s.path, r.Status, r.Body)
			}
			envs := f.out.Next(t)
			if s.event == "" {
				if len(envs) != 0 {
					t.Fatalf("%s %s %s published %v", s.method, s.path, s.body, outboxtest.Subjects(envs))
				}
				continue
			}
			if len(envs) != 1 || envs[0].Type != s.event {
				t.Fatalf("%s %s: events %v, want %s", s.method, s.path, outboxtest.Subjects(envs), s.event)
			}
			var b struct{ Data Template }
			r.Decode(t, &b)
			if b.Data.Status != s.wantStatus || b.Data.Version != s.wantVersion {
				t.Fatalf("%s %s: %s v%d, want %s v%d", s.method, s.path, b.Data.Status, b.Data.Version, s.wantStatus, s.wantVersion)
			}
			d, _ := event.DecodeData[event.TemplateData](envs[0])
			if d.Version != s.wantVersion || d.TemplateID != tpl.ID {
				t.Fatalf("event %+v", d)
			}
		}
		// Version 1 is kept as it was.
		v1 := f.template(f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID+"/versions/1", ""), 200)
		if v1.Version != 1 || !strings.Contains(v1.Content.HTML, "Class of") {
			t.Fatalf("version 1 %+v", v1)
		}
		if r := f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID+"/versions/9", ""); r.Status != 404 || r.ErrorCode() != "template_version_not_found" {
			t.Fatalf("missing version: %d %s", r.Status, r.Body)
		}
		f.do(tenantA, "POST", "/api/v1/templates/"+tpl.ID+"/archive", "")
		f.out.Next(t)
		if r := f.do(tenantA, "DELETE", "/api/v1/templates/"+tpl.ID, ""); r.Status != 204 {
			t.Fatalf("delete archived: %d %s", r.Status, r.Body)
		}
		if envs := f.out.Next(t); len(envs) != 1 || envs[0].Type != event.TemplateDeleted {
			t.Fatalf("delete events %v", outboxtest.Subjects(envs))
		}
		if r := f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID, ""); r.Status != 404 {
			t.Fatalf("deleted template: %d", r.Status)
		}
	})
}

func TestTemplateValidation(t *testing.T) {
	cases := []struct {
		name, body, mention string
	}{
		{"unknown variable with position", `{"name": "x", "channel": "email", "content": {"subject": "Hi", "html": "<p>\n  {{contact.frstName}}</p>"}}`, `html: line 2, column 5: unknown variable \"contact.frstName\"`},
		{"unclosed placeholder", `{"name": "x", "channel": "sms", "content": {"body": "Hi {{contact.firstName"}}`, "body: line 1, column 4"},
		{"unknown filter", `{"name": "x", "channel": "sms", "content": {"body": "{{contact.email | bold}}"}}`, `unknown filter`},
		{"no subject", `{"name": "x", "channel": "email", "content": {"html": "<p>x</p>"}}`, "needs a subject"},
		{"no body", `{"name": "x", "channel": "email", "content": {"subject": "x"}}`, "HTML body, a text body"},
		{"bad from", `{"name": "x", "channel": "email", "content": {"subject": "x", "text": "y", "from": "nope"}}`, "from"},
		{"multi-line subject", `{"name": "x", "channel": "email", "content": {"subject": "a\nb", "text": "y"}}`, "one line"},
		{"unsafe html", `{"name": "x", "channel": "email", "content": {"subject": "x", "html": "<a href=\"{{unsubscribeUrl}}"}}`, "never closed"},
		{"sms too long", `{"name": "x", "channel": "sms", "content": {"body": "` + strings.Repeat("a", 1601) + `"}}`, "1600"},
		{"sms with subject", `{"name": "x", "channel": "sms", "content": {"body": "x", "subject": "y"}}`, "only a body"},
		{"sms with a sender", `{"name": "x", "channel": "sms", "content": {"body": "x", "from": "a@example.org"}}`, "provider"},
		{"unknown channel", `{"name": "x", "channel": "fax", "content": {"body": "x"}}`, "channel"},
		{"no content", `{"name": "x", "channel": "sms"}`, "needs content"},
		{"no name", `{"channel": "sms", "content": {"body": "x"}}`, "name"},
		{"unknown default", `{"name": "x", "channel": "sms", "content": {"body": "x", "defaults": {"contact.nickname": "y"}}}`, "contact.nickname"},
		{"wa bad name", `{"name": "x", "channel": "whatsapp", "content": {"whatsapp": {"name": "Spring Appeal", "language": "en_US", "category": "MARKETING", "body": "Hi"}}}`, "lower-case"},
		{"wa params mismatch", `{"name": "x", "channel": "whatsapp", "content": {"whatsapp": {"name": "appeal", "language": "en_US", "category": "MARKETING", "body": "Hi {{1}}, {{2}}", "params": ["{{contact.firstName}}"]}}}`, "exactly 2"},
		{"wa bad param", `{"name": "x", "channel": "whatsapp", "content": {"whatsapp": {"name": "appeal", "language": "en_US", "category": "MARKETING", "body": "Hi {{1}}", "params": ["{{contact.nope}}"]}}}`, "whatsapp.params[0]: line 1, column 3"},
		{"wa bad category", `{"name": "x", "channel": "whatsapp", "content": {"whatsapp": {"name": "appeal", "language": "en_US", "category": "PROMO", "body": "Hi"}}}`, "category"},
		{"unknown field", `{"name": "x", "channel": "sms", "content": {"body": "x", "html": "y", "colour": "red"}}`, "colour"},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, c := range cases {
			r := f.do(tenantA, "POST", "/api/v1/templates", c.body)
			if r.Status != 400 || !strings.Contains(string(r.Body), c.mention) {
				t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
			}
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("refused templates published %v", outboxtest.Subjects(envs))
		}
		if r := f.do(tenantA, "GET", "/api/v1/templates", ""); strings.Contains(string(r.Body), `"id"`) {
			t.Fatalf("refused templates stored: %s", r.Body)
		}
		f.template(f.do(tenantA, "POST", "/api/v1/templates", emailTemplate), 201)
		if r := f.do(tenantA, "POST", "/api/v1/templates", emailTemplate); r.Status != 409 || r.ErrorCode() != "template_exists" {
			t.Fatalf("duplicate name: %d %s", r.Status, r.Body)
		}
	})
}

func TestPreview(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tpl := f.template(f.do(tenantA, "POST", "/api/v1/templates", emailTemplate), 201)
		f.out.Next(t)
		cases := []struct {
			body     string
			contains []string
		}{
			{`{"contactId": "c1", "campaign": {"name": "Spring Appeal"}}`, []string{`"subject":"Grace, the Spring Appeal"`, `Class of 1928`, `Dear grace`, `example.invalid/unsubscribe/preview`}},
			{`{"contact": {"firstName": "<b>x</b>", "attributes": {"classYear": 2010}}}`, []string{`Dear \u0026lt;b\u0026gt;x\u0026lt;/b\u0026gt;`, `"text":"Dear \u003cb\u003ex\u003c/b\u003e"`, "Class of 2010"}},
			// The placeholder's own default comes first, the template's defaults after.
			{``, []string{`"subject":"Friend, the "`, `Dear friend`, `"text":"Dear alum"`}},
		}
		for _, c := range cases {
			r := f.do(tenantA, "POST", "/api/v1/templates/"+tpl.ID+"/preview", c.body)
			if r.Status != 200 {
				t.Fatalf("preview %s: %d %s", c.body, r.Status, r.Body)
			}
			for _, want := range c.contains {
				if !strings.Contains(string(r.Body), want) {
					t.Errorf("preview %s lacks %s:\n%s", c.body, want, r.Body)
				}
			}
		}
		if r := f.do(tenantA, "POST", "/api/v1/templates/"+tpl.ID+"/preview", `{"contactId": "nobody"}`); r.Status != 404 || r.ErrorCode() != "contact_not_found" {
			t.Fatalf("unknown contact: %d %s", r.Status, r.Body)
		}
		// Tenant B cannot preview A's template, nor A's contact through its own template.
		if r := f.do(tenantB, "POST", "/api/v1/templates/"+tpl.ID+"/preview", `{}`); r.Status != 404 {
			t.Fatalf("tenant B preview: %d", r.Status)
		}
		b := f.template(f.do(tenantB, "POST", "/api/v1/templates", emailTemplate), 201)
		if r := f.do(tenantB, "POST", "/api/v1/templates/"+b.ID+"/preview", `{"contactId": "c1"}`); r.Status != 404 {
			t.Fatalf("tenant B previews A's contact: %d %s", r.Status, r.Body)
		}
		if len(f.out.Next(t)) != 1 {
			t.Fatal("previews must publish nothing")
		}
	})
}

func TestWhatsAppReview(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		body := `{"name": "Reunion", "channel": "whatsapp", "content": {"body": "Hi {{contact.firstName}}!",
			"whatsapp": {"name": "reunion_invite", "language": "en_US", "category": "MARKETING", "body": "Hi {{1}}, join us on {{2}}",
			"params": ["{{contact.firstName | default: \"there\"}}", "{{campaign.name}}"]}}}`
		tpl := f.template(f.do(tenantA, "POST", "/api/v1/templates", body), 201)
		other := f.template(f.do(tenantB, "POST", "/api/v1/templates", body), 201)
		f.out.Next(t)
		got := f.template(f.do(tenantA, "POST", "/api/v1/templates/"+tpl.ID+"/review", ""), 200)
		if got.Review == nil || got.Review.Status != ReviewSubmitted || got.Review.Name != "reunion_invite" {
			t.Fatalf("submitted %+v", got.Review)
		}
		envs := f.out.Next(t)
		if len(envs) != 1 || envs[0].Type != event.TemplateHSMSubmitted {
			t.Fatalf("events %v", outboxtest.Subjects(envs))
		}
		ctx := context.Background()
		if n, err := f.svc.ApplyReview(ctx, tenantA, "reunion_invite", "en_US", false, "", "wa-1"); err != nil || n != 1 {
			t.Fatalf("reject: %d %v", n, err)
		}
		envs = f.out.Next(t)
		if len(envs) != 1 || envs[0].Type != event.TemplateHSMRejected {
			t.Fatalf("reject events %v", outboxtest.Subjects(envs))
		}
		f.do(tenantA, "POST", "/api/v1/templates/"+tpl.ID+"/review", "")
		f.out.Next(t)
		if n, _ := f.svc.ApplyReview(ctx, tenantA, "reunion_invite", "en_US", true, "", "wa-1"); n != 1 {
			t.Fatal("approval not applied")
		}
		if n, _ := f.svc.ApplyReview(ctx, tenantA, "reunion_invite", "en_US", true, "", "wa-1"); n != 0 {
			t.Fatal("a repeated approval applied twice")
		}
		envs = f.out.Next(t)
		if len(envs) != 1 || envs[0].Type != event.TemplateHSMApproved {
			t.Fatalf("approve events %v", outboxtest.Subjects(envs))
		}
		if got := f.template(f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID, ""), 200); got.Review.Status != ReviewApproved {
			t.Fatalf("review %+v", got.Review)
		}
		// Tenant B's template of the same name was never submitted: untouched.
		if got := f.template(f.do(tenantB, "GET", "/api/v1/templates/"+other.ID, ""), 200); got.Review != nil {
			t.Fatalf("tenant B's template reviewed: %+v", got.Review)
		}
		r := f.do(tenantA, "POST", "/api/v1/templates/"+tpl.ID+"/preview", `{"contact": {"firstName": "Ada"}, "campaign": {"name": "Reunion Day"}}`)
		if !strings.Contains(string(r.Body), `"params":["Ada","Reunion Day"]`) || !strings.Contains(string(r.Body), `"body":"Hi Ada!"`) {
			t.Fatalf("whatsapp preview %s", r.Body)
		}
		sms := f.template(f.do(tenantA, "POST", "/api/v1/templates", `{"name": "Text", "channel": "sms", "content": {"body": "x"}}`), 201)
		if r := f.do(tenantA, "POST", "/api/v1/templates/"+sms.ID+"/review", ""); r.Status != 409 {
			t.Fatalf("review of an SMS template: %d %s", r.Status, r.Body)
		}
	})
}

func TestTemplateTenantIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		tpl := f.template(f.do(tenantA, "POST", "/api/v1/templates", emailTemplate), 201)
		f.out.Next(t)
		for _, r := range []struct{ method, path, body string }{
			{"GET", "", ""}, {"PATCH", "", `{"name": "mine"}`}, {"DELETE", "", ""},
			{"POST", "/activate", ""}, {"POST", "/archive", ""}, {"GET", "/versions/1", ""},
			{"POST", "/preview", `{}`}, {"POST", "/review", ""},
		} {
			if resp := f.do(tenantB, r.method, "/api/v1/templates/"+tpl.ID+r.path, r.body); resp.Status != 404 {
				t.Errorf("tenant B %s %s: %d %s", r.method, r.path, resp.Status, resp.Body)
			}
		}
		if r := f.do(tenantB, "GET", "/api/v1/templates", ""); strings.Contains(string(r.Body), tpl.ID) {
			t.Fatal("tenant B lists A's template")
		}
		if envs := f.out.Next(t); len(envs) != 0 {
			t.Fatalf("tenant B's attempts published %v", outboxtest.Subjects(envs))
		}
		got := f.template(f.do(tenantA, "GET", "/api/v1/templates/"+tpl.ID, ""), 200)
		if got.Name != "Spring appeal" || got.Status != StatusCreated {
			t.Fatalf("tenant B changed A's template: %+v", got)
		}
	})
}

func TestListFiltersAndPages(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	for i := range 5 {
		ch, content := "sms", `{"body": "x"}`
		if i%2 == 0 {
			ch, content = "email", `{"subject": "s", "text": "t"}`
		}
		f.template(f.do(tenantA, "POST", "/api/v1/templates", fmt.Sprintf(`{"name": "t%d", "channel": %q, "content": %s}`, i, ch, content)), 201)
	}
	var names []string
	cursor := ""
	for {
		r := f.do(tenantA, "GET", "/api/v1/templates?channel=email&limit=2&cursor="+cursor, "")
		var p struct {
			Data       []Template
			NextCursor string
		}
		r.Decode(t, &p)
		for _, x := range p.Data {
			names = append(names, x.Name)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if strings.Join(names, ",") != "t0,t2,t4" {
		t.Fatalf("email templates %v", names)
	}
	if r := f.do(tenantA, "GET", "/api/v1/templates?kind=email", ""); r.Status != 400 {
		t.Fatalf("unknown parameter: %d", r.Status)
	}
}

// TestConcurrentCreatesOfOneName: of two creates racing for a name, one
// wins and the other gets the conflict, never a server error.
func TestConcurrentCreatesOfOneName(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		statuses := make(chan int, 8)
		for range 8 {
			go func() { statuses <- f.do(tenantA, "POST", "/api/v1/templates", emailTemplate).Status }()
		}
		created := 0
		for range 8 {
			switch s := <-statuses; s {
			case 201:
				created++
			case 409:
			default:
				t.Errorf("a racing create answered %d", s)
			}
		}
		if created != 1 {
			t.Fatalf("%d creates won the name", created)
		}
	})
}

// TestRenderSeesLifecycleChangesAtOnce: Render keeps a template's status
// in memory for a moment; a change made here is seen at once.
func TestRenderSeesLifecycleChangesAtOnce(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	ctx := context.Background()
	tpl := f.template(f.do(tenantA, "POST", "/api/v1/templates", emailTemplate), 201)
	for _, step := range []struct{ action, want string }{{"", StatusCreated}, {"activate", StatusActive}, {"archive", StatusArchived}} {
		if step.action != "" {
			f.do(tenantA, "POST", "/api/v1/templates/"+tpl.ID+"/"+step.action, "")
		}
		r, err := f.svc.Render(ctx, tenantA, tpl.ID, 0, &render.Data{})
		if err != nil || r.Status != step.want {
			t.Fatalf("after %q: %+v %v", step.action, r, err)
		}
	}
}
