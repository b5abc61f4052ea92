package contacts

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/httpapi/apitest"
	"github.com/alumoutreach/alumoutreach/internal/platform/outbox/outboxtest"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

func (f *fixture) upload(tenant, mode, contentType, body string) apitest.Response {
	f.t.Helper()
	target := "/api/v1/contacts/imports"
	if mode != "" {
		target += "?mode=" + mode
	}
	return apitest.Do(f.t, f.mux, tenant, "POST", target, body, "Content-Type", contentType)
}

// awaitImport polls the import until it is no longer running.
func (f *fixture) awaitImport(tenant, id string) Import {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := f.do(tenant, "GET", "/api/v1/contacts/imports/"+id, "")
		var body struct{ Data Import }
		r.Decode(f.t, &body)
		if r.Status != 200 {
			f.t.Fatalf("GET import: %d %s", r.Status, r.Body)
		}
		if body.Data.Status != ImportRunning {
			return body.Data
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("import %s still running: %+v", id, body.Data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fixture) startImport(tenant, mode, contentType, body string) Import {
	f.t.Helper()
	r := f.upload(tenant, mode, contentType, body)
	if r.Status != http.StatusAccepted {
		f.t.Fatalf("import upload: %d %s", r.Status, r.Body)
	}
	var started struct{ Data Import }
	r.Decode(f.t, &started)
	return f.awaitImport(tenant, started.Data.ID)
}

func TestImportCSVWithGoodAndBadRows(t *testing.T) {
	csv := "\ufeffEmail,First Name,last_name,phone,tags,attributes.classYear,attributes.zip,attributes.vip,attributes.code:string,consent.email\n" +
		"ada@example.org,Ada,Lovelace,+44 20 7946 0958,alumni;donor,1835,02139,true,007,yes\n" +
		"not-an-email,Bad,Row,,,,,,,\n" +
		"grace@example.org,Grace,Hopper,,alumni,1928,,false,,no\n" +
		"ada@example.org,Duplicate,Ada,,,,,,,\n" +
		"short,row\n" +
		"\"alan@example.org\",\"Alan, M.\",Turing,,,1934,,,,maybe\n" +
		"kath@example.org,Katherine,Johnson,,,1937,,,,\n"
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		imp := f.startImport(tenantA, "", "text/csv; charset=utf-8", csv)
		if imp.Status != ImportCompleted || imp.Total != 7 || imp.Done != 7 || imp.Created != 3 || imp.Failed != 4 || imp.Mode != ModeCreate {
			t.Fatalf("import ended as %+v", imp)
		}
		r := f.do(tenantA, "GET", "/api/v1/contacts/imports/"+imp.ID+"/errors?limit=2", "")
		var page struct {
			Data       []ImportError
			NextCursor string
		}
		r.Decode(t, &page)
		r2 := f.do(tenantA, "GET", "/api/v1/contacts/imports/"+imp.ID+"/errors?cursor="+page.NextCursor, "")
		var page2 struct{ Data []ImportError }
		r2.Decode(t, &page2)
		errs := append(page.Data, page2.Data...)
		want := []struct {
			row     int64
			mention string
		}{{3, "not-an-email"}, {5, "already has email"}, {6, "2 cells"}, {7, "maybe"}}
		if len(errs) != len(want) {
			t.Fatalf("row errors %+v", errs)
		}
		for i, w := range want {
			if errs[i].Row != w.row || !strings.Contains(errs[i].Reason, w.mention) {
				t.Errorf("error %d = %+v, want row %d mentioning %q", i, errs[i], w.row, w.mention)
			}
		}

		ada := f.list(tenantA, "/api/v1/contacts?email=ada@example.org").Data[0]
		if ada.FirstName != "Ada" || ada.Phone != "+442079460958" || ada.Source != "import" || !slices.Equal(ada.Tags, []string{"alumni", "donor"}) ||
			string(ada.Attributes["classYear"]) != "1835" || string(ada.Attributes["zip"]) != `"02139"` ||
			string(ada.Attributes["vip"]) != "true" || string(ada.Attributes["code"]) != `"007"` || !ada.Consent["email"].Granted {
			t.Fatalf("imported contact %+v attrs %s", ada, ada.Attributes)
		}
		if !strings.Contains(ada.Consent["email"].Proof, imp.ID) {
			t.Errorf("consent proof %q does not name the import", ada.Consent["email"].Proof)
		}
		grace := f.list(tenantA, "/api/v1/contacts?email=grace@example.org").Data[0]
		if grace.Consent["email"].Granted || string(grace.Attributes["vip"]) != "false" {
			t.Fatalf("grace %+v", grace)
		}
		envs := f.events()
		var created, consent int
		correlations := map[string]bool{}
		for _, e := range envs {
			switch e.Type {
			case event.ContactCreated:
				created++
				correlations[e.CorrelationID] = true
			case event.ContactConsentGranted, event.ContactConsentRevoked:
				consent++
			}
		}
		if created != 3 || consent != 2 || len(correlations) != 3 {
			t.Fatalf("import events %v (%d correlations)", outboxtest.Subjects(envs), len(correlations))
		}
		// Tenant B sees neither the import nor its errors.
		for _, target := range []string{"/api/v1/contacts/imports/" + imp.ID, "/api/v1/contacts/imports/" + imp.ID + "/errors"} {
			if r := f.do(tenantB, "GET", target, ""); r.Status != 404 {
				t.Errorf("tenant B GET %s: %d", target, r.Status)
			}
		}
		if r := f.do(tenantB, "DELETE", "/api/v1/contacts/imports/"+imp.ID, ""); r.Status != 404 {
			t.Errorf("tenant B cancels A's import: %d", r.Status)
		}
		if r := f.do(tenantA, "DELETE", "/api/v1/contacts/imports/"+imp.ID, ""); r.Status != 409 || r.ErrorCode() != "import_finished" {
			t.Errorf("cancel a finished import: %d %s", r.Status, r.Body)
		}
	})
}

func TestImportNDJSONUpsert(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.create(tenantA, `{"email": "mary@example.org", "firstName": "Mary"}`)
		f.create(tenantA, `{"email": "same@example.org", "firstName": "Same"}`)
		nd := `{"email": "mary@example.org", "lastName": "Somerville", "tags": ["scientist"]}` + "\n" +
			"\n" +
			`{"email": "same@example.org", "firstName": "Same"}` + "\n" +
			`{"email": "new@example.org", "attributes": {"classYear": 2001}}` + "\n" +
			`{"email": "bad@example.org", "timeZone": "Nowhere/Town"}` + "\n" +
			`{not json` + "\n" +
			`{"phone": "+15550000009"}`
		imp := f.startImport(tenantA, ModeUpsert, "application/x-ndjson", nd)
		if imp.Status != ImportCompleted || imp.Total != 6 || imp.Done != 6 || imp.Created != 2 || imp.Updated != 1 || imp.Failed != 2 {
			t.Fatalf("import ended as %+v", imp)
		}
		errs, err := f.imports.Errors(context.Background(), tenantA, imp.ID, 0, 10)
		if err != nil || len(errs) != 2 || errs[0].Row != 5 || !strings.Contains(errs[0].Reason, "Nowhere/Town") || errs[1].Row != 6 {
			t.Fatalf("errors %+v (%v)", errs, err)
		}
		mary := f.list(tenantA, "/api/v1/contacts?email=mary@example.org").Data[0]
		if mary.FirstName != "Mary" || mary.LastName != "Somerville" || mary.Version != 2 || !slices.Equal(mary.Tags, []string{"scientist"}) {
			t.Fatalf("upserted %+v", mary)
		}
		same := f.list(tenantA, "/api/v1/contacts?email=same@example.org").Data[0]
		if same.Version != 1 {
			t.Fatalf("an unchanged row raised the version to %d", same.Version)
		}
	})
}

func TestImportRefusesBadUploads(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		cases := []struct {
			name, mode, ctype, body, code, mention string
		}{
			{"unknown column", "", "text/csv", "email,favouriteColour\na@example.org,blue\n", "invalid_import", "favouriteColour"},
			{"no address column", "", "text/csv", "firstName\nAda\n", "invalid_import", "email or a phone"},
			{"empty file", "", "text/csv", "", "invalid_import", "empty"},
			{"bad attribute name", "", "text/csv", "email,attributes.class year\n", "invalid_import", "class year"},
			{"bad attribute type", "", "text/csv", "email,attributes.x:date\n", "invalid_import", "date"},
			{"repeated column", "", "text/csv", "email,Email\n", "invalid_import", "repeats"},
			{"unknown mode", "merge", "text/csv", "email\na@example.org\n", "invalid_import", "merge"},
			{"json body", "", "application/json", `{"email": "a@example.org"}`, "unsupported_media_type", "text/csv"},
		}
		for _, c := range cases {
			r := f.upload(tenantA, c.mode, c.ctype, c.body)
			if r.Status != 400 || r.ErrorCode() != c.code || !strings.Contains(string(r.Body), c.mention) {
				t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
			}
		}
		if r := f.do(tenantA, "POST", "/api/v1/contacts/imports?format=csv", "email\n", "Content-Type", "text/csv"); r.Status != 400 {
			t.Errorf("unknown parameter: %d", r.Status)
		}
		var n int
		if err := db.Reader().QueryRow(`SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM contact_imports)`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("refused uploads stored %d rows (%v)", n, err)
		}
		if files, _ := os.ReadDir(f.imports.opts.SpoolDir); len(files) != 0 {
			t.Fatalf("refused uploads left spool files: %v", files)
		}
	})
}

func TestImportTooLarge(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	f.imports.opts.MaxBytes = 64
	r := f.upload(tenantA, "", "text/csv", "email\n"+strings.Repeat("someone@example.org\n", 10))
	if r.Status != http.StatusRequestEntityTooLarge || r.ErrorCode() != "import_too_large" {
		t.Fatalf("oversized import: %d %s", r.Status, r.Body)
	}
}

// TestImportResumesAfterShutdown stops an import after its first batch, as
// a shutdown would, and checks that the next start finishes it with every
// row imported exactly once.
func TestImportResumesAfterShutdown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var b strings.Builder
		b.WriteString("email,attributes.n\n")
		const rows = 20
		for i := range rows {
			fmt.Fprintf(&b, "r%d@example.org,%d\n", i, i)
		}
		im := f.imports
		imp := im.newImport(tenantA, FormatCSV, ModeCreate)
		imp.spool = filepath.Join(im.opts.SpoolDir, imp.ID+".csv")
		if err := os.WriteFile(imp.spool, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		imp.Total = rows
		ctx := context.Background()
		if err := im.insert(ctx, imp); err != nil {
			t.Fatal(err)
		}
		stopCtx, stop := context.WithCancel(ctx)
		file, err := os.Open(imp.spool)
		if err != nil {
			t.Fatal(err)
		}
		err = im.process(stopCtx, imp, file, 0, func(Import) { stop() })
		file.Close()
		if err == nil || imp.Done != 3 {
			t.Fatalf("the interrupted import went on: done %d, err %v", imp.Done, err)
		}

		next := NewImporter(f.svc, im.opts, im.log)
		t.Cleanup(next.Stop)
		if err := next.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		f.imports = next
		done := f.awaitImport(tenantA, imp.ID)
		if done.Status != ImportCompleted || done.Done != rows || done.Created != rows || done.Failed != 0 {
			t.Fatalf("resumed import ended as %+v", done)
		}
		if p := f.list(tenantA, "/api/v1/contacts?limit=100"); len(p.Data) != rows {
			t.Fatalf("%d contacts after the resumed import, want %d", len(p.Data), rows)
		}
		if _, err := os.Stat(imp.spool); !os.IsNotExist(err) {
			t.Fatalf("spool file left after completion: %v", err)
		}
	})
}

func TestImportRunFromFile(t *testing.T) {
	f := newFixture(t, storetest.Open(t, store.SQLite))
	path := filepath.Join(t.TempDir(), "contacts.ndjson")
	var b strings.Builder
	for i := range 10 {
		fmt.Fprintf(&b, `{"email": "f%d@example.org"}`+"\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var seen []int64
	imp, err := f.imports.Run(context.Background(), tenantA, FormatNDJSON, ModeCreate, path, func(p Import) { seen = append(seen, p.Done) })
	if err != nil || imp.Status != ImportCompleted || imp.Created != 10 {
		t.Fatalf("run: %+v %v", imp, err)
	}
	if !slices.Equal(seen, []int64{3, 6, 9, 10}) {
		t.Fatalf("progress reports %v", seen)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the user's file must stay: %v", err)
	}
}
