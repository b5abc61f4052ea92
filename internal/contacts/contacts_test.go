package contacts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi/apitest"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
	"log/slog"
)

const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
)

// fixture is the module on a real database, called through its HTTP
// handlers as a tenant, with the outbox read back after each change.
type fixture struct {
	t       *testing.T
	db      *store.DB
	svc     *Service
	imports *Importer
	mux     apitest.Mux
	out     *outboxtest.Reader
}

// migrate applies the outbox's and the module's migrations to db.
func migrate(t testing.TB, db *store.DB) {
	t.Helper()
	ctx := context.Background()
	if err := db.Migrate(ctx, "outbox", outbox.Migrations()); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	migrate(t, db)
	log := slog.New(slog.DiscardHandler)
	svc := NewService(db, outbox.New(db, 0), log)
	imports := NewImporter(svc, ImportOptions{SpoolDir: t.TempDir(), BatchSize: 3}, log)
	t.Cleanup(imports.Stop)
	mux := apitest.NewMux()
	NewHTTP(svc, imports).RegisterRoutes(mux)
	return &fixture{t: t, db: db, svc: svc, imports: imports, mux: mux, out: outboxtest.NewReader(t, db)}
}

func (f *fixture) do(tenant, method, target, body string, header ...string) apitest.Response {
	f.t.Helper()
	return apitest.Do(f.t, f.mux, tenant, method, target, body, header...)
}

// contact decodes a {"data": contact} answer.
func (f *fixture) contact(r apitest.Response, wantStatus int) Contact {
	f.t.Helper()
	if r.Status != wantStatus {
		f.t.Fatalf("status %d, want %d: %s", r.Status, wantStatus, r.Body)
	}
	var body struct{ Data Contact }
	r.Decode(f.t, &body)
	return body.Data
}

func (f *fixture) create(tenant, body string) Contact {
	f.t.Helper()
	c := f.contact(f.do(tenant, "POST", "/api/v1/contacts", body), http.StatusCreated)
	f.out.Next(f.t)
	return c
}

// events returns the events written since the last call, checking each
// against the contract.
func (f *fixture) events() []event.Envelope {
	f.t.Helper()
	envs := f.out.Next(f.t)
	for _, e := range envs {
		if err := e.Validate(); err != nil {
			f.t.Errorf("event %s fails the contract: %v", e.Type, err)
		}
		if e.Source != event.SourceContacts {
			f.t.Errorf("event %s has source %q", e.Type, e.Source)
		}
	}
	return envs
}

func decodeData[T any](t *testing.T, e event.Envelope) T {
	t.Helper()
	v, err := event.DecodeData[T](e)
	if err != nil {
		t.Fatalf("%s: %v", e.Type, err)
	}
	return v
}

func TestCreateAndGet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.contact(f.do(tenantA, "POST", "/api/v1/contacts", `{
			"email": " Ada.Lovelace@Example.ORG ", "phone": "+44 (20) 7946-0958",
			"firstName": "Ada", "lastName": "Lovelace", "locale": "en-GB", "timeZone": "Europe/London",
			"attributes": {"classYear": 1835, "major": "Mathematics", "donor": true, "joined": "2020-05-01"},
			"tags": ["alumni", "donor", "alumni"],
			"consent": {"email": {"granted": true, "source": "signup_form", "proof": "form /join from 203.0.113.9"}},
			"source": "website_signup"}`), http.StatusCreated)
		if c.Email != "ada.lovelace@example.org" || c.Phone != "+442079460958" || c.Version != 1 {
			t.Fatalf("normalised contact wrong: %+v", c)
		}
		if !slices.Equal(c.Tags, []string{"alumni", "donor"}) || !c.Consent["email"].Granted || c.Consent["email"].Source != "signup_form" {
			t.Fatalf("tags or consent wrong: %+v", c)
		}
		if string(c.Attributes["classYear"]) != "1835" || string(c.Attributes["donor"]) != "true" {
			t.Fatalf("attributes wrong: %s", c.Attributes)
		}

		got := f.contact(f.do(tenantA, "GET", "/api/v1/contacts/"+c.ID, ""), http.StatusOK)
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(c)
		if string(gotJSON) != string(wantJSON) {
			t.Fatalf("GET differs from the created contact:\n got %s\nwant %s", gotJSON, wantJSON)
		}

		envs := f.events()
		if subj := outboxtest.Subjects(envs); !slices.Equal(subj, []string{event.ContactCreated, event.ContactConsentGranted}) {
			t.Fatalf("events %v", subj)
		}
		created := decodeData[event.ContactCreatedData](t, envs[0])
		if created.ContactID != c.ID || created.Email != c.Email || created.Version != 1 || created.Source != "website_signup" ||
			!slices.Equal(created.Tags, c.Tags) || string(created.Attributes["major"]) != `"Mathematics"` || envs[0].TenantID != tenantA {
			t.Fatalf("contact.created payload %+v", created)
		}
		consent := decodeData[event.ContactConsentData](t, envs[1])
		if consent.Channel != "email" || consent.Proof != "form /join from 203.0.113.9" || consent.Version != 1 {
			t.Fatalf("consent payload %+v", consent)
		}
		if envs[0].CorrelationID != envs[1].CorrelationID {
			t.Fatal("events of one change must share the correlation id")
		}
	})
}

func TestCreateRefusesBadInputAndWritesNothing(t *testing.T) {
	long := strings.Repeat("x", 201)
	cases := []struct {
		name, body, code, mention string
		status                    int
	}{
		{"invalid JSON", `{"email": `, "invalid_json", "JSON", 400},
		{"not an object", `["a"]`, "invalid_json", "object", 400},
		{"unknown field", `{"email": "a@example.org", "emial": "x"}`, "unknown_field", "emial", 400},
		{"no address", `{"firstName": "Ada"}`, "contact_unreachable", "email or a phone", 400},
		{"bad email", `{"email": "ada@"}`, "invalid_field", "ada@", 400},
		{"email with display name", `{"email": "Ada <ada@example.org>"}`, "invalid_field", "valid address", 400},
		{"email without domain dot", `{"email": "ada@localhost"}`, "invalid_field", "domain", 400},
		{"national phone", `{"phone": "020 7946 0958"}`, "invalid_field", "country code", 400},
		{"phone with letters", `{"phone": "+44 20 CALL ME"}`, "invalid_field", "digits", 400},
		{"phone too short", `{"phone": "+44 12"}`, "invalid_field", "E.164", 400},
		{"email not a string", `{"email": 42}`, "invalid_field", "string", 400},
		{"bad locale", `{"email": "a@example.org", "locale": "english please"}`, "invalid_field", "language tag", 400},
		{"bad time zone", `{"email": "a@example.org", "timeZone": "Mars/Olympus"}`, "invalid_field", "IANA", 400},
		{"name too long", `{"email": "a@example.org", "firstName": "` + long + `"}`, "invalid_field", "longer than 200", 400},
		{"control character", `{"email": "a@example.org", "lastName": "a\u0007b"}`, "invalid_field", "control", 400},
		{"attribute object", `{"email": "a@example.org", "attributes": {"address": {"city": "x"}}}`, "invalid_field", "objects and arrays", 400},
		{"attribute bad name", `{"email": "a@example.org", "attributes": {"class year": 1}}`, "invalid_field", "attribute name", 400},
		{"attributes not object", `{"email": "a@example.org", "attributes": [1]}`, "invalid_field", "JSON object", 400},
		{"empty tag", `{"email": "a@example.org", "tags": [" "]}`, "invalid_field", "tag", 400},
		{"tags not array", `{"email": "a@example.org", "tags": "vip"}`, "invalid_field", "array", 400},
		{"consent unknown channel", `{"email": "a@example.org", "consent": {"fax": {"granted": true, "source": "x"}}}`, "invalid_field", "fax", 400},
		{"consent without source", `{"email": "a@example.org", "consent": {"email": {"granted": true}}}`, "invalid_field", "source", 400},
		{"consent unknown member", `{"email": "a@example.org", "consent": {"email": {"granted": true, "source": "x", "ip": "1"}}}`, "invalid_field", "ip", 400},
		{"consent in the future", `{"email": "a@example.org", "consent": {"email": {"granted": true, "source": "x", "at": "2999-01-01T00:00:00Z"}}}`, "invalid_field", "future", 400},
		{"oversized body", `{"email": "a@example.org", "firstName": "` + strings.Repeat("y", maxContactBody) + `"}`, "payload_too_large", "larger than", 413},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, c := range cases {
			r := f.do(tenantA, "POST", "/api/v1/contacts", c.body)
			if r.Status != c.status || r.ErrorCode() != c.code || !strings.Contains(string(r.Body), c.mention) {
				t.Errorf("%s: got %d %s, want %d %s mentioning %q", c.name, r.Status, r.Body, c.status, c.code, c.mention)
			}
		}
		if envs := f.events(); len(envs) != 0 {
			t.Fatalf("refused creates published %v", outboxtest.Subjects(envs))
		}
		var n int
		if err := db.Reader().QueryRow(`SELECT count(*) FROM contacts`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("refused creates stored %d contacts (%v)", n, err)
		}
		r := f.do(tenantA, "POST", "/api/v1/contacts", `{"email": "a@example.org"}`, "Content-Type", "text/plain")
		if r.Status != 400 || r.ErrorCode() != "unsupported_media_type" {
			t.Errorf("text/plain body: %d %s", r.Status, r.Body)
		}
	})
}

func TestUniqueEmailAndPhonePerTenant(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.create(tenantA, `{"email": "grace@example.org", "phone": "+14155550100"}`)
		for _, body := range []string{`{"email": "GRACE@example.org"}`, `{"phone": "+1 415 555 0100"}`} {
			r := f.do(tenantA, "POST", "/api/v1/contacts", body)
			if r.Status != http.StatusConflict || r.ErrorCode() != "contact_exists" || !strings.Contains(string(r.Body), a.ID) {
				t.Fatalf("duplicate %s: %d %s", body, r.Status, r.Body)
			}
		}
		other := f.create(tenantA, `{"email": "other@example.org"}`)
		r := f.do(tenantA, "PATCH", "/api/v1/contacts/"+other.ID, `{"email": "grace@example.org"}`)
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), a.ID) {
			t.Fatalf("update to a taken email: %d %s", r.Status, r.Body)
		}
		if envs := f.events(); len(envs) != 0 {
			t.Fatalf("conflicts published %v", outboxtest.Subjects(envs))
		}
		// Another tenant may have the same person.
		f.create(tenantB, `{"email": "grace@example.org", "phone": "+14155550100"}`)
	})
}

func TestUpdateRecordsChangesAndVersions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.create(tenantA, `{"email": "alan@example.org", "firstName": "Alan", "attributes": {"classYear": 1934, "city": "London"}}`)
		u := f.contact(f.do(tenantA, "PATCH", "/api/v1/contacts/"+c.ID,
			`{"firstName": "Alan M.", "lastName": "Turing", "attributes": {"classYear": 1934, "city": null, "degree": "PhD"}}`, "If-Match", `"1"`), http.StatusOK)
		if u.Version != 2 || u.FirstName != "Alan M." || u.LastName != "Turing" || u.Attributes["city"] != nil || string(u.Attributes["degree"]) != `"PhD"` {
			t.Fatalf("updated contact %+v", u)
		}
		if !u.UpdatedAt.After(c.UpdatedAt) && !u.UpdatedAt.Equal(c.UpdatedAt) {
			t.Fatalf("updatedAt went back: %v -> %v", c.UpdatedAt, u.UpdatedAt)
		}
		envs := f.events()
		if len(envs) != 1 || envs[0].Type != event.ContactUpdated {
			t.Fatalf("events %v", outboxtest.Subjects(envs))
		}
		d := decodeData[event.ContactUpdatedData](t, envs[0])
		want := map[string][2]string{
			"firstName":         {`"Alan"`, `"Alan M."`},
			"lastName":          {``, `"Turing"`},
			"attributes.city":   {`"London"`, ``},
			"attributes.degree": {``, `"PhD"`},
		}
		if d.Version != 2 || len(d.Changes) != len(want) {
			t.Fatalf("changes %+v", d)
		}
		for k, w := range want {
			if got := d.Changes[k]; string(got.Old) != w[0] || string(got.New) != w[1] {
				t.Errorf("change %s = %s -> %s, want %s -> %s", k, got.Old, got.New, w[0], w[1])
			}
		}

		// Nothing changes: no new version, no event.
		same := f.contact(f.do(tenantA, "PATCH", "/api/v1/contacts/"+c.ID, `{"firstName": "Alan M."}`), http.StatusOK)
		if same.Version != 2 || len(f.events()) != 0 {
			t.Fatalf("a no-op update raised the version to %d", same.Version)
		}
		// A stale If-Match is a conflict and writes nothing.
		r := f.do(tenantA, "PATCH", "/api/v1/contacts/"+c.ID, `{"firstName": "X"}`, "If-Match", "1")
		if r.Status != http.StatusConflict || r.ErrorCode() != "version_mismatch" || len(f.events()) != 0 {
			t.Fatalf("stale If-Match: %d %s", r.Status, r.Body)
		}
		// Clearing both addresses would leave an unreachable contact.
		r = f.do(tenantA, "PATCH", "/api/v1/contacts/"+c.ID, `{"email": null}`)
		if r.Status != 400 || r.ErrorCode() != "contact_unreachable" {
			t.Fatalf("clearing the only address: %d %s", r.Status, r.Body)
		}
		for _, bad := range []string{`{"tags": ["x"]}`, `{"version": 3}`, `{"email": "nope"}`, `nul`} {
			if r := f.do(tenantA, "PATCH", "/api/v1/contacts/"+c.ID, bad); r.Status != 400 {
				t.Errorf("PATCH %s: %d %s", bad, r.Status, r.Body)
			}
		}
		if envs := f.events(); len(envs) != 0 {
			t.Fatalf("refused updates published %v", outboxtest.Subjects(envs))
		}
		got := f.contact(f.do(tenantA, "GET", "/api/v1/contacts/"+c.ID, ""), http.StatusOK)
		if got.Version != 2 || got.Email != "alan@example.org" {
			t.Fatalf("refused updates changed the contact: %+v", got)
		}
	})
}

func TestTagsAndConsent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.create(tenantA, `{"email": "kath@example.org", "tags": ["alumni"]}`)
		u := f.contact(f.do(tenantA, "POST", "/api/v1/contacts/"+c.ID+"/tags", `{"tags": ["vip", "alumni", "class-of-2010"]}`), http.StatusOK)
		if u.Version != 2 || !slices.Equal(u.Tags, []string{"alumni", "class-of-2010", "vip"}) {
			t.Fatalf("after tagging: %+v", u)
		}
		envs := f.events()
		if subj := outboxtest.Subjects(envs); !slices.Equal(subj, []string{event.ContactTagged, event.ContactTagged}) {
			t.Fatalf("tag events %v", subj)
		}
		var tags []string
		for _, e := range envs {
			d := decodeData[event.ContactTagData](t, e)
			if d.Version != 2 {
				t.Errorf("tag event version %d", d.Version)
			}
			tags = append(tags, d.Tag)
		}
		if slices.Sort(tags); !slices.Equal(tags, []string{"class-of-2010", "vip"}) {
			t.Fatalf("tagged %v", tags)
		}
		// Tags already there: nothing.
		if u := f.contact(f.do(tenantA, "POST", "/api/v1/contacts/"+c.ID+"/tags", `{"tags": ["vip"]}`), http.StatusOK); u.Version != 2 || len(f.events()) != 0 {
			t.Fatalf("re-tagging raised the version to %d", u.Version)
		}
		u = f.contact(f.do(tenantA, "DELETE", "/api/v1/contacts/"+c.ID+"/tags/vip", ""), http.StatusOK)
		envs = f.events()
		if u.Version != 3 || slices.Contains(u.Tags, "vip") || len(envs) != 1 || envs[0].Type != event.ContactUntagged {
			t.Fatalf("untag: %+v %v", u, outboxtest.Subjects(envs))
		}
		if u := f.contact(f.do(tenantA, "DELETE", "/api/v1/contacts/"+c.ID+"/tags/vip", ""), http.StatusOK); u.Version != 3 || len(f.events()) != 0 {
			t.Fatal("removing an absent tag must change nothing")
		}

		u = f.contact(f.do(tenantA, "PUT", "/api/v1/contacts/"+c.ID+"/consent/sms", `{"granted": true, "source": "sms_keyword", "proof": "JOIN from +14155550101"}`), http.StatusOK)
		envs = f.events()
		if u.Version != 4 || !u.Consent["sms"].Granted || len(envs) != 1 || envs[0].Type != event.ContactConsentGranted {
			t.Fatalf("grant: %+v %v", u, outboxtest.Subjects(envs))
		}
		// The same decision again keeps the first proof and publishes nothing.
		u = f.contact(f.do(tenantA, "PUT", "/api/v1/contacts/"+c.ID+"/consent/sms", `{"granted": true, "source": "import"}`), http.StatusOK)
		if u.Version != 4 || u.Consent["sms"].Source != "sms_keyword" || len(f.events()) != 0 {
			t.Fatalf("repeated grant: %+v", u)
		}
		u = f.contact(f.do(tenantA, "PUT", "/api/v1/contacts/"+c.ID+"/consent/sms", `{"granted": false, "source": "sms_stop", "proof": "STOP"}`), http.StatusOK)
		envs = f.events()
		if u.Version != 5 || u.Consent["sms"].Granted || len(envs) != 1 || envs[0].Type != event.ContactConsentRevoked {
			t.Fatalf("revoke: %+v %v", u, outboxtest.Subjects(envs))
		}
		for _, bad := range []struct{ target, body string }{
			{"/consent/fax", `{"granted": true, "source": "x"}`},
			{"/consent/email", `{"granted": true}`},
			{"/consent/email", `{"granted": "yes", "source": "x"}`},
			{"/tags", `{"tags": []}`},
			{"/tags", `{"tags": ["` + strings.Repeat("t", 65) + `"]}`},
		} {
			method := "PUT"
			if bad.target == "/tags" {
				method = "POST"
			}
			if r := f.do(tenantA, method, "/api/v1/contacts/"+c.ID+bad.target, bad.body); r.Status != 400 {
				t.Errorf("%s %s: %d %s", bad.target, bad.body, r.Status, r.Body)
			}
		}
		if envs := f.events(); len(envs) != 0 {
			t.Fatalf("refused changes published %v", outboxtest.Subjects(envs))
		}
	})
}

func TestUpsertByEmailOrPhone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.contact(f.do(tenantA, "POST", "/api/v1/contacts/upsert", `{"email": "mary@example.org", "firstName": "Mary"}`), http.StatusCreated)
		if c.Source != "upsert" || len(f.events()) != 1 {
			t.Fatalf("upsert create: %+v", c)
		}
		u := f.contact(f.do(tenantA, "POST", "/api/v1/contacts/upsert",
			`{"email": "MARY@example.org", "phone": "+15550000001", "tags": ["donor"], "consent": {"email": {"granted": true, "source": "crm"}}}`), http.StatusOK)
		if u.ID != c.ID || u.Version != 2 || u.Phone != "+15550000001" || u.FirstName != "Mary" || !slices.Equal(u.Tags, []string{"donor"}) {
			t.Fatalf("upsert update: %+v", u)
		}
		subj := outboxtest.Subjects(f.events())
		if !slices.Equal(subj, []string{event.ContactUpdated, event.ContactTagged, event.ContactConsentGranted}) {
			t.Fatalf("upsert update events %v", subj)
		}
		byPhone := f.contact(f.do(tenantA, "POST", "/api/v1/contacts/upsert", `{"phone": "+1 555 000 0001", "lastName": "Somerville"}`), http.StatusOK)
		if byPhone.ID != c.ID || byPhone.LastName != "Somerville" {
			t.Fatalf("upsert by phone: %+v", byPhone)
		}
		f.create(tenantA, `{"email": "john@example.org"}`)
		r := f.do(tenantA, "POST", "/api/v1/contacts/upsert", `{"email": "john@example.org", "phone": "+15550000001"}`)
		if r.Status != http.StatusConflict || r.ErrorCode() != "contact_ambiguous" {
			t.Fatalf("ambiguous upsert: %d %s", r.Status, r.Body)
		}
		if r := f.do(tenantA, "POST", "/api/v1/contacts/upsert", `{"firstName": "Nobody"}`); r.Status != 400 {
			t.Fatalf("upsert without address: %d %s", r.Status, r.Body)
		}
		f.events()
		// Tenant B's upsert of the same address creates B's own contact.
		b := f.contact(f.do(tenantB, "POST", "/api/v1/contacts/upsert", `{"email": "mary@example.org"}`), http.StatusCreated)
		if b.ID == c.ID {
			t.Fatal("tenant B's upsert matched tenant A's contact")
		}
	})
}

func TestDeleteAndErase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		gone := f.create(tenantA, `{"email": "del@example.org", "tags": ["x"]}`)
		if r := f.do(tenantA, "DELETE", "/api/v1/contacts/"+gone.ID, ""); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		envs := f.events()
		if len(envs) != 1 || envs[0].Type != event.ContactDeleted {
			t.Fatalf("delete events %v", outboxtest.Subjects(envs))
		}
		if d := decodeData[event.ContactDeletedData](t, envs[0]); d.Erased || d.Version != 2 {
			t.Fatalf("delete payload %+v", d)
		}
		if r := f.do(tenantA, "GET", "/api/v1/contacts/"+gone.ID, ""); r.Status != 404 || r.ErrorCode() != "contact_not_found" {
			t.Fatalf("get deleted: %d %s", r.Status, r.Body)
		}
		// The address is free again.
		f.create(tenantA, `{"email": "del@example.org"}`)

		c := f.create(tenantA, `{"email": "erase@example.org", "phone": "+15550000002", "firstName": "Eve",
			"attributes": {"note": "private"}, "tags": ["t"], "consent": {"email": {"granted": true, "source": "form", "proof": "ip 1.2.3.4"}}}`)
		e := f.contact(f.do(tenantA, "POST", "/api/v1/contacts/"+c.ID+"/erase", ""), http.StatusOK)
		if e.ErasedAt == nil || e.Email != "" || e.Phone != "" || e.FirstName != "" || len(e.Attributes) != 0 || len(e.Tags) != 0 || len(e.Consent) != 0 || e.ID != c.ID {
			t.Fatalf("erased contact still holds data: %+v", e)
		}
		envs = f.events()
		if len(envs) != 1 || !decodeData[event.ContactDeletedData](t, envs[0]).Erased {
			t.Fatalf("erase events %v", outboxtest.Subjects(envs))
		}
		var leftovers int
		err := db.Reader().QueryRow(`SELECT (SELECT count(*) FROM contact_tags WHERE contact_id = $1) + (SELECT count(*) FROM contact_consents WHERE contact_id = $1)`, c.ID).Scan(&leftovers)
		if err != nil || leftovers != 0 {
			t.Fatalf("erase left %d tag/consent rows (%v)", leftovers, err)
		}
		if r := f.do(tenantA, "PATCH", "/api/v1/contacts/"+c.ID, `{"firstName": "Eve"}`); r.Status != http.StatusConflict || r.ErrorCode() != "contact_erased" {
			t.Fatalf("update of an erased contact: %d %s", r.Status, r.Body)
		}
		if r := f.do(tenantA, "POST", "/api/v1/contacts/"+c.ID+"/erase", ""); r.Status != 200 || len(f.events()) != 0 {
			t.Fatalf("erasing twice: %d %s", r.Status, r.Body)
		}
		page := f.list(tenantA, "/api/v1/contacts")
		for _, x := range page.Data {
			if x.ID == c.ID {
				t.Fatal("erased contact listed")
			}
		}
	})
}

type contactPage struct {
	Data       []Contact
	NextCursor string
}

func (f *fixture) list(tenant, target string) contactPage {
	f.t.Helper()
	r := f.do(tenant, "GET", target, "")
	if r.Status != 200 {
		f.t.Fatalf("GET %s: %d %s", target, r.Status, r.Body)
	}
	var p contactPage
	r.Decode(f.t, &p)
	return p
}

func ids(cs []Contact) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestListFiltersSearchAndPagination(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var all []Contact
		for i := range 7 {
			all = append(all, f.create(tenantA, fmt.Sprintf(`{"email": "p%d@example.org", "firstName": "Person%d", "lastName": "Smith_%d",
				"phone": "+1555000100%d", "attributes": {"classYear": %d, "city": "%s", "active": %t}}`,
				i, i, i, i, 2000+i%3, []string{"Boston", "Leeds"}[i%2], i%2 == 0)))
		}
		f.do(tenantA, "POST", "/api/v1/contacts/"+all[1].ID+"/tags", `{"tags": ["vip"]}`)
		f.do(tenantA, "POST", "/api/v1/contacts/"+all[4].ID+"/tags", `{"tags": ["vip"]}`)
		f.do(tenantA, "PUT", "/api/v1/contacts/"+all[2].ID+"/consent/email", `{"granted": true, "source": "form"}`)
		f.do(tenantA, "PUT", "/api/v1/contacts/"+all[3].ID+"/consent/email", `{"granted": false, "source": "link"}`)
		f.create(tenantB, `{"email": "p0@example.org", "firstName": "Person0"}`)

		var paged []Contact
		next := "/api/v1/contacts?limit=3"
		for pages := 0; next != ""; pages++ {
			if pages > 3 {
				t.Fatal("pagination does not end")
			}
			p := f.list(tenantA, next)
			paged = append(paged, p.Data...)
			next = ""
			if p.NextCursor != "" {
				next = "/api/v1/contacts?limit=3&cursor=" + p.NextCursor
			}
		}
		if !slices.Equal(ids(paged), ids(all)) {
			t.Fatalf("paged %v, want %v", ids(paged), ids(all))
		}

		cases := []struct {
			query string
			want  []int
		}{
			{"email=P3@Example.org", []int{3}},
			{"phone=%2B1%20555%20000%201005", []int{5}},
			{"tag=vip", []int{1, 4}},
			{"attribute=classYear:2001", []int{1, 4}},
			{"attribute=city:Leeds", []int{1, 3, 5}},
			{"attribute=active:true", []int{0, 2, 4, 6}},
			{`attribute=classYear:"2001"`, nil},
			{"consent=email:granted", []int{2}},
			{"consent=email:revoked", []int{3}},
			{"consent=email:none", []int{0, 1, 4, 5, 6}},
			{"q=person5", []int{5}},
			{"q=SMITH_1", []int{1}},
			{"q=p6@", []int{6}},
			{"q=1003", []int{3}},
			{"q=%25", nil},
			{"tag=vip&attribute=classYear:2001&q=person4", []int{4}},
			{"createdAfter=2000-01-01T00:00:00Z&createdBefore=2999-01-01T00:00:00Z&updatedAfter=2000-01-01T00:00:00Z", []int{0, 1, 2, 3, 4, 5, 6}},
			{"createdBefore=2000-01-01T00:00:00Z", nil},
		}
		for _, c := range cases {
			got := ids(f.list(tenantA, "/api/v1/contacts?"+c.query).Data)
			var want []string
			for _, i := range c.want {
				want = append(want, all[i].ID)
			}
			if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
				t.Errorf("%s: got %v, want %v", c.query, got, want)
			}
		}
		for _, bad := range []string{"limit=0", "limit=5000", "cursor=zzz", "email=nope", "phone=123", "attribute=noColon",
			"consent=fax:granted", "consent=email:maybe", "createdAfter=yesterday", "sort=name", "tag=a&tag=b"} {
			if r := f.do(tenantA, "GET", "/api/v1/contacts?"+bad, ""); r.Status != 400 {
				t.Errorf("%s: %d %s", bad, r.Status, r.Body)
			}
		}
	})
}

// TestTenantIsolation: tenant B reaches none of tenant A's contacts, by id
// or by list, and changes nothing of them.
func TestTenantIsolation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.create(tenantA, `{"email": "secret@example.org", "tags": ["a"]}`)
		id := a.ID
		for _, r := range []struct{ method, target, body string }{
			{"GET", "/api/v1/contacts/" + id, ""},
			{"PATCH", "/api/v1/contacts/" + id, `{"firstName": "Mallory"}`},
			{"DELETE", "/api/v1/contacts/" + id, ""},
			{"POST", "/api/v1/contacts/" + id + "/erase", ""},
			{"POST", "/api/v1/contacts/" + id + "/tags", `{"tags": ["b"]}`},
			{"DELETE", "/api/v1/contacts/" + id + "/tags/a", ""},
			{"PUT", "/api/v1/contacts/" + id + "/consent/email", `{"granted": true, "source": "x"}`},
		} {
			if resp := f.do(tenantB, r.method, r.target, r.body); resp.Status != http.StatusNotFound {
				t.Errorf("tenant B %s %s: %d %s", r.method, r.target, resp.Status, resp.Body)
			}
		}
		for _, q := range []string{"", "?email=secret@example.org", "?tag=a", "?q=secret"} {
			if p := f.list(tenantB, "/api/v1/contacts"+q); len(p.Data) != 0 {
				t.Errorf("tenant B lists A's contacts with %q: %v", q, ids(p.Data))
			}
		}
		if envs := f.events(); len(envs) != 0 {
			t.Fatalf("tenant B's attempts published %v", outboxtest.Subjects(envs))
		}
		got := f.contact(f.do(tenantA, "GET", "/api/v1/contacts/"+id, ""), http.StatusOK)
		if got.Version != 1 || got.FirstName != "" || !slices.Equal(got.Tags, []string{"a"}) {
			t.Fatalf("tenant B changed A's contact: %+v", got)
		}
	})
}

// GetMany reads in one statement what Get reads in three: each contact
// comes back as Get returns it (tags sorted, every consent decision),
// missing ids and other tenants' contacts are left out.
func TestGetManyReadsWhatGetReads(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		plain := f.create(tenantA, `{"email": "plain@example.org"}`)
		rich := f.create(tenantA, `{"email": "rich@example.org", "phone": "+14155550123", "firstName": "Zoë", "tags": ["vip", "alumni", "class-of-2010"],
			"attributes": {"gradYear": 2010, "city": "Nantes", "donor": true},
			"consent": {"email": {"granted": true, "source": "signup_form", "proof": "ip 203.0.113.9"}, "sms": {"granted": false, "source": "sms_keyword"}}}`)
		other := f.create(tenantB, `{"email": "other@example.org", "tags": ["vip"]}`)
		got, err := f.svc.GetMany(ctx, tenantA, []string{rich.ID, plain.ID, other.ID, "no-such-contact"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("GetMany returned %d contacts, want 2 (tenant A's)", len(got))
		}
		for _, c := range got {
			want, err := f.svc.Get(ctx, tenantA, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("GetMany's %s\n%+v\nGet's\n%+v", c.ID, *c, *want)
			}
		}
	})
}
