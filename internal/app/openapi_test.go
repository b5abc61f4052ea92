package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/contacts"
	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
	"github.com/alumoutreach/alumoutreach/internal/templates"
)

// The document lives in internal/app/openapi.json; these tests keep it
// true to the server: same routes, valid references, and responses whose
// status and shape the document allows.

// builtInRoutes are documented although they are outside /api/v1.
var builtInRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics"}

var (
	pathParamRe = regexp.MustCompile(`\{([^}]*)\}`)
	restParamRe = regexp.MustCompile(`\{(\w+)\.\.\.\}`)
)

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// openAPI is the parsed document with the helpers the checks need.
type openAPI struct {
	root map[string]any
}

// operation is one method on one path of the document.
type operation struct {
	key    string // "GET /api/v1/admin/dlq/{seq}", the form of a ServeMux pattern
	path   string
	op     map[string]any
	params []map[string]any // path-item and operation parameters, resolved
}

func fetchOpenAPI(t *testing.T, base string) openAPI {
	t.Helper()
	status, header, raw := call(t, "GET", base+"/api/v1/openapi.json", "", "")
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json without a key: %d %s", status, raw)
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("openapi.json served as %q", header.Get("Content-Type"))
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return openAPI{root: root}
}

// call sends one request; key "" sends no Authorization header. header
// holds further headers as name, value pairs.
func call(t *testing.T, method, url, key, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

// pointer follows a local JSON reference such as "#/components/schemas/Error".
func (d openAPI) pointer(ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = d.root
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// resolve returns v with $ref followed (repeatedly); nil when v is not an
// object or the reference is broken (which TestOpenAPIDocument reports).
func (d openAPI) resolve(v any) map[string]any {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		if v, ok = d.pointer(ref); !ok {
			return nil
		}
	}
	return nil
}

func (d openAPI) operations() map[string]operation {
	ops := map[string]operation{}
	paths, _ := d.root["paths"].(map[string]any)
	for path, rawItem := range paths {
		item := d.resolve(rawItem)
		var shared []map[string]any
		for _, p := range asSlice(item["parameters"]) {
			shared = append(shared, d.resolve(p))
		}
		for _, m := range httpMethods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			o := operation{key: strings.ToUpper(m) + " " + path, path: path, op: op, params: slices.Clone(shared)}
			for _, p := range asSlice(op["parameters"]) {
				o.params = append(o.params, d.resolve(p))
			}
			ops[o.key] = o
		}
	}
	return ops
}

// needsKey reports whether the operation's effective security requires the
// bearer key (an empty requirement object would make it optional).
func (d openAPI) needsKey(o operation) bool {
	sec, ok := o.op["security"]
	if !ok {
		sec = d.root["security"]
	}
	reqs := asSlice(sec)
	if len(reqs) == 0 {
		return false
	}
	for _, r := range reqs {
		if m, _ := r.(map[string]any); len(m) == 0 {
			return false
		}
	}
	return true
}

// response returns the documented response for status (or "default").
func (d openAPI) response(o operation, status int) map[string]any {
	rs, _ := o.op["responses"].(map[string]any)
	if r, ok := rs[strconv.Itoa(status)]; ok {
		return d.resolve(r)
	}
	if r, ok := rs["default"]; ok {
		return d.resolve(r)
	}
	return nil
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// routeKey turns a registered ServeMux pattern into the document's form:
// "{name...}" is "{name}", a trailing "{$}" goes.
func routeKey(t *testing.T, pattern string) string {
	t.Helper()
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || !strings.HasPrefix(path, "/") {
		t.Errorf("route %q: give it a method and no host (\"GET /api/v1/...\"), so it can be described", pattern)
		return pattern
	}
	if strings.HasSuffix(path, "/") && path != "/" {
		t.Errorf("route %q matches a whole subtree, which OpenAPI cannot describe; end it with {$} or a name", pattern)
	}
	path = restParamRe.ReplaceAllString(strings.TrimSuffix(path, "{$}"), "{$1}")
	return method + " " + path
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	base := "http://" + a.HTTPAddr()
	doc := fetchOpenAPI(t, base)
	ops := doc.operations()

	t.Run("header", func(t *testing.T) {
		if v, _ := doc.root["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
			t.Errorf("openapi = %q, want 3.1.x", v)
		}
		info, _ := doc.root["info"].(map[string]any)
		if info["title"] == nil || info["version"] == nil {
			t.Errorf("info needs title and version: %v", info)
		}
		bearer := doc.resolve(mustPointer(t, doc, "#/components/securitySchemes/bearerAuth"))
		if bearer["type"] != "http" || bearer["scheme"] != "bearer" {
			t.Errorf("bearerAuth = %v, want an http bearer scheme", bearer)
		}
		errProps := doc.resolve(mustPointer(t, doc, "#/components/schemas/Error/properties/error"))["properties"].(map[string]any)
		for _, f := range []string{"code", "message", "details", "correlationId"} {
			if errProps[f] == nil {
				t.Errorf("the Error schema lacks error.%s", f)
			}
		}
	})

	t.Run("every reference resolves", func(t *testing.T) {
		var walk func(at string, v any)
		walk = func(at string, v any) {
			switch v := v.(type) {
			case map[string]any:
				if ref, ok := v["$ref"].(string); ok {
					if _, ok := doc.pointer(ref); !ok {
						t.Errorf("%s: $ref %q points at nothing", at, ref)
					}
				}
				for k, c := range v {
					walk(at+"/"+k, c)
				}
			case []any:
				for i, c := range v {
					walk(at+"/"+strconv.Itoa(i), c)
				}
			}
		}
		walk("#", doc.root)
	})

	t.Run("operations are well formed", func(t *testing.T) {
		ids := map[string]string{}
		for key, o := range ops {
			id, _ := o.op["operationId"].(string)
			if id == "" {
				t.Errorf("%s has no operationId", key)
			} else if other, dup := ids[id]; dup {
				t.Errorf("operationId %q used by %s and %s", id, other, key)
			}
			ids[id] = key
			if rs, _ := o.op["responses"].(map[string]any); len(rs) == 0 {
				t.Errorf("%s documents no responses", key)
			}
			if doc.needsKey(o) && doc.response(o, http.StatusUnauthorized) == nil {
				t.Errorf("%s needs a key but documents no 401", key)
			}
			var inPath []string
			for _, m := range pathParamRe.FindAllStringSubmatch(o.path, -1) {
				inPath = append(inPath, m[1])
			}
			var declared []string
			for _, p := range o.params {
				if p == nil {
					t.Errorf("%s: a parameter does not resolve", key)
					continue
				}
				if p["in"] == "path" {
					declared = append(declared, p["name"].(string))
					if p["required"] != true {
						t.Errorf("%s: path parameter %v must be required", key, p["name"])
					}
				}
			}
			sort.Strings(inPath)
			sort.Strings(declared)
			if !slices.Equal(inPath, declared) {
				t.Errorf("%s: path has parameters %v, the document declares %v", key, inPath, declared)
			}
		}
	})
}

// TestOpenAPIDescribesEveryRoute is what keeps the document in step: a route
// added to the server without a description, or described but not served,
// fails here.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	a := startApp(t, testConfig(t, ""))
	doc := fetchOpenAPI(t, "http://"+a.HTTPAddr())
	documented := doc.operations()

	registered := map[string]string{} // document form -> pattern
	for _, p := range app.HTTPPatterns(a) {
		registered[routeKey(t, p)] = p
	}
	if len(registered) == 0 {
		t.Fatal("the app registered no routes")
	}
	for key, pattern := range registered {
		_, path, _ := strings.Cut(key, " ")
		if !strings.HasPrefix(path, "/api/v1/") && !slices.Contains(builtInRoutes, key) {
			continue // e.g. provider webhooks, authenticated by signature
		}
		if _, ok := documented[key]; !ok {
			t.Errorf("route %q is not in internal/app/openapi.json: describe it there (paths[%q].%s)",
				pattern, path, strings.ToLower(strings.Fields(key)[0]))
		}
	}
	for key := range documented {
		if _, ok := registered[key]; !ok {
			t.Errorf("internal/app/openapi.json describes %q, which no route serves: remove it, or register the route", key)
		}
	}
}

// TestOpenAPIMatchesResponses sends requests to every documented operation
// and checks that the status is one the document lists for it and that JSON
// bodies fit the documented schema, fields included: a field added to a
// response without being documented fails here.
func TestOpenAPIMatchesResponses(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "")
	a := startApp(t, cfg)
	base := "http://" + a.HTTPAddr()
	doc := fetchOpenAPI(t, base)
	ops := doc.operations()

	check := func(t *testing.T, key string, status int, header http.Header, raw []byte) {
		t.Helper()
		o, ok := ops[key]
		if !ok {
			t.Errorf("%s is not documented", key)
			return
		}
		resp := doc.response(o, status)
		if resp == nil {
			t.Errorf("%s answered %d, which the document does not list: %s", key, status, raw)
			return
		}
		content, _ := resp["content"].(map[string]any)
		if len(content) == 0 {
			if len(raw) != 0 {
				t.Errorf("%s %d: documented without a body, got %s", key, status, raw)
			}
			return
		}
		mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
		media, ok := content[mt].(map[string]any)
		if !ok {
			t.Errorf("%s %d: Content-Type %q, the document lists %v", key, status, mt, keys(content))
			return
		}
		if mt != "application/json" {
			return
		}
		var body any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("%s %d: body is not JSON: %s", key, status, raw)
			return
		}
		for _, p := range doc.fits(media["schema"], body, "body") {
			t.Errorf("%s %d: %s\nbody: %s", key, status, p, raw)
		}
	}

	t.Run("without a key", func(t *testing.T) {
		for key, o := range ops {
			method, path, _ := strings.Cut(key, " ")
			path = pathParamRe.ReplaceAllString(path, "1")
			body := ""
			if o.op["requestBody"] != nil {
				body = "{}"
			}
			status, header, raw := call(t, method, base+path, "", body)
			switch needs := doc.needsKey(o); {
			case needs && status != http.StatusUnauthorized:
				t.Errorf("%s without a key answered %d, not 401; the document says it needs a key (register it with HandleAPI, or give it security: [])", key, status)
			case !needs && status == http.StatusUnauthorized:
				t.Errorf("%s without a key answered 401; the document marks it public (security: [])", key)
			}
			check(t, key, status, header, raw)
		}
	})

	t.Run("with a key", func(t *testing.T) {
		ctx := context.Background()
		_, key, err := a.Tenants().Create(ctx, "OpenAPI")
		if err != nil {
			t.Fatal(err)
		}
		tenantID := mustTenant(t, a, key)
		// Dead letters through the real path, so the DLQ routes answer
		// with entries to check against the schema.
		c, err := a.Bus().StartConsumer(ctx, bus.ConsumerOptions{Name: "OPENAPI_REFUSING_CONSUMER", Filters: []string{"contact.>"},
			Handler: func(context.Context, event.Envelope) error { return bus.Permanent(io.ErrUnexpectedEOF) }})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Stop(ctx)
		emit(t, a, event.ContactCreated, tenantID, event.ContactCreatedData{ContactID: "c1", Version: 1})
		emit(t, a, event.ContactCreated, tenantID, event.ContactCreatedData{ContactID: "c2", Version: 1})
		var seqs []uint64
		bustest.Eventually(t, 10*time.Second, "two dead letters", func() bool {
			items, _, err := a.Bus().ListDLQ(ctx, bus.DLQFilter{TenantID: tenantID})
			seqs = seqs[:0]
			for _, d := range items {
				seqs = append(seqs, d.Seq)
			}
			return err == nil && len(seqs) == 2
		})
		one, two := fmt.Sprint(seqs[0]), fmt.Sprint(seqs[1])
		requests := []struct {
			op, path, body string
			want           int
		}{
			{"GET /api/v1/analytics/events/counts", "/api/v1/analytics/events/counts?interval=day&subject=contact.>", "", 200},
			{"GET /api/v1/analytics/events/counts", "/api/v1/analytics/events/counts?from=yesterday", "", 400},
			{"GET /api/v1/admin/dlq", "/api/v1/admin/dlq?limit=1", "", 200},
			{"GET /api/v1/admin/dlq", "/api/v1/admin/dlq?limit=0", "", 400},
			{"GET /api/v1/admin/dlq", "/api/v1/admin/dlq?cursor=nonsense", "", 400},
			{"GET /api/v1/admin/dlq/{seq}", "/api/v1/admin/dlq/" + one, "", 200},
			{"GET /api/v1/admin/dlq/{seq}", "/api/v1/admin/dlq/999999", "", 404},
			{"GET /api/v1/admin/dlq/{seq}", "/api/v1/admin/dlq/abc", "", 400},
			{"POST /api/v1/admin/dlq/{seq}/replay", "/api/v1/admin/dlq/" + one + "/replay", "", 202},
			{"DELETE /api/v1/admin/dlq/{seq}", "/api/v1/admin/dlq/" + two, "", 204},
			{"DELETE /api/v1/admin/dlq/{seq}", "/api/v1/admin/dlq/" + two, "", 404},
			{"POST /api/v1/admin/dlq/replay", "/api/v1/admin/dlq/replay", `{"consumer":"NO_SUCH_CONSUMER"}`, 200},
			{"POST /api/v1/admin/dlq/purge", "/api/v1/admin/dlq/purge", `{"subject":"contact.created"}`, 200},
			{"POST /api/v1/admin/dlq/purge", "/api/v1/admin/dlq/purge", `{"consumers":"X"}`, 400},
			{"POST /api/v1/admin/dlq/purge", "/api/v1/admin/dlq/purge", `x`, 400},
		}
		for _, r := range requests {
			method, _, _ := strings.Cut(r.op, " ")
			status, header, raw := call(t, method, base+r.path, key, r.body)
			if status != r.want {
				t.Errorf("%s %s: %d, want %d: %s", method, r.path, status, r.want, raw)
			}
			check(t, r.op, status, header, raw)
		}

		// Contacts, on contacts created here (after the DLQ checks: the
		// refusing consumer dead-letters their events too).
		create := func(body string) string {
			t.Helper()
			status, header, raw := call(t, "POST", base+"/api/v1/contacts", key, body)
			check(t, "POST /api/v1/contacts", status, header, raw)
			var created struct{ Data struct{ ID string } }
			if status != http.StatusCreated || json.Unmarshal(raw, &created) != nil || created.Data.ID == "" {
				t.Fatalf("POST /api/v1/contacts %s: %d %s", body, status, raw)
			}
			return created.Data.ID
		}
		ada := "/api/v1/contacts/" + create(`{"email": "Ada@Example.org", "phone": "+44 20 7946 0958", "firstName": "Ada",
			"lastName": "Lovelace", "locale": "en-GB", "timeZone": "Europe/London", "attributes": {"classYear": 1835, "major": "Mathematics", "donor": true},
			"tags": ["alumni"], "consent": {"email": {"granted": true, "source": "signup_form", "proof": "form /join"}}, "source": "website_signup"}`)
		grace := "/api/v1/contacts/" + create(`{"phone": "+1 415 555 0100"}`)
		runProbes(t, check, base, key, []probe{
			{"POST /api/v1/contacts", "/api/v1/contacts", `{"email": "ADA@example.org"}`, nil, 409},
			{"POST /api/v1/contacts", "/api/v1/contacts", `{"phone": "020 7946 0958"}`, nil, 400},
			{"POST /api/v1/contacts", "/api/v1/contacts", `{"email": "a@example.org", "emial": "x"}`, nil, 400},
			{"POST /api/v1/contacts", "/api/v1/contacts", `{"email": "a@example.org", "lastName": "` + strings.Repeat("x", 600<<10) + `"}`, nil, 413},
			{"GET /api/v1/contacts", "/api/v1/contacts?limit=1", "", nil, 200},
			{"GET /api/v1/contacts", "/api/v1/contacts?tag=alumni&attribute=classYear:1835&consent=email:granted&q=love&createdAfter=2000-01-01T00:00:00Z", "", nil, 200},
			{"GET /api/v1/contacts", "/api/v1/contacts?phone=%2B14155550100&consent=sms:none", "", nil, 200},
			{"GET /api/v1/contacts", "/api/v1/contacts?sort=name", "", nil, 400},
			{"GET /api/v1/contacts", "/api/v1/contacts?consent=email:maybe", "", nil, 400},
			{"POST /api/v1/contacts/upsert", "/api/v1/contacts/upsert", `{"email": "mary@example.org", "firstName": "Mary"}`, nil, 201},
			{"POST /api/v1/contacts/upsert", "/api/v1/contacts/upsert", `{"email": "MARY@example.org", "tags": ["donor"], "consent": {"sms": {"granted": false, "source": "crm"}}}`, nil, 200},
			{"POST /api/v1/contacts/upsert", "/api/v1/contacts/upsert", `{"email": "ada@example.org", "phone": "+14155550100"}`, nil, 409},
			{"POST /api/v1/contacts/upsert", "/api/v1/contacts/upsert", `{"firstName": "Nobody"}`, nil, 400},
			{"GET /api/v1/contacts/{id}", ada, "", nil, 200},
			{"GET /api/v1/contacts/{id}", "/api/v1/contacts/no-such-contact", "", nil, 404},
			{"PATCH /api/v1/contacts/{id}", ada, `{"lastName": "King", "locale": null, "attributes": {"major": null, "degree": "Mathematics"}}`, []string{"If-Match", `"1"`}, 200},
			{"PATCH /api/v1/contacts/{id}", ada, `{"lastName": "Byron"}`, []string{"If-Match", "1"}, 409},
			{"PATCH /api/v1/contacts/{id}", ada, `{"lastName": "Byron"}`, []string{"If-Match", "W/\"2\""}, 400},
			{"PATCH /api/v1/contacts/{id}", ada, `{"tags": ["x"]}`, nil, 400},
			{"PATCH /api/v1/contacts/{id}", ada, `{"phone": "+1 415 555 0100"}`, nil, 409},
			{"PATCH /api/v1/contacts/{id}", "/api/v1/contacts/no-such-contact", `{"lastName": "Byron"}`, nil, 404},
			{"POST /api/v1/contacts/{id}/tags", ada + "/tags", `{"tags": ["vip", "class of 1835"]}`, nil, 200},
			{"POST /api/v1/contacts/{id}/tags", ada + "/tags", `{"tags": []}`, nil, 400},
			{"POST /api/v1/contacts/{id}/tags", "/api/v1/contacts/no-such-contact/tags", `{"tags": ["vip"]}`, nil, 404},
			{"DELETE /api/v1/contacts/{id}/tags/{tag}", ada + "/tags/class%20of%201835", "", nil, 200},
			{"DELETE /api/v1/contacts/{id}/tags/{tag}", ada + "/tags/%20", "", nil, 400},
			{"DELETE /api/v1/contacts/{id}/tags/{tag}", "/api/v1/contacts/no-such-contact/tags/vip", "", nil, 404},
			{"PUT /api/v1/contacts/{id}/consent/{channel}", ada + "/consent/sms", `{"granted": true, "source": "sms_keyword", "proof": "JOIN"}`, nil, 200},
			{"PUT /api/v1/contacts/{id}/consent/{channel}", ada + "/consent/fax", `{"granted": true, "source": "x"}`, nil, 400},
			{"PUT /api/v1/contacts/{id}/consent/{channel}", "/api/v1/contacts/no-such-contact/consent/sms", `{"granted": true, "source": "x"}`, nil, 404},
			{"POST /api/v1/contacts/{id}/erase", grace + "/erase", "", nil, 200},
			{"POST /api/v1/contacts/{id}/erase", "/api/v1/contacts/no-such-contact/erase", "", nil, 404},
			{"POST /api/v1/contacts/{id}/tags", grace + "/tags", `{"tags": ["vip"]}`, nil, 409},
			{"DELETE /api/v1/contacts/{id}/tags/{tag}", grace + "/tags/vip", "", nil, 409},
			{"PUT /api/v1/contacts/{id}/consent/{channel}", grace + "/consent/sms", `{"granted": true, "source": "x"}`, nil, 409},
			{"GET /api/v1/contacts/{id}", grace, "", nil, 200},
			{"DELETE /api/v1/contacts/{id}", grace, "", nil, 204},
			{"DELETE /api/v1/contacts/{id}", grace, "", nil, 404},
		})

		probeImports(t, check, a, cfg, base, key, tenantID)
		probeSegments(t, check, base, key)
		probeTemplates(t, check, a, base, key, tenantID, strings.TrimPrefix(ada, "/api/v1/contacts/"))
		probeIdempotency(t, check, base, key)
		probeMessages(t, check, base, key)
		probeCampaigns(t, check, base, key)
		probeWorkflows(t, check, base, key, strings.TrimPrefix(ada, "/api/v1/contacts/"))
		probeInbox(t, check, a, base, key, tenantID)
		probeSequences(t, check, base, key, strings.TrimPrefix(ada, "/api/v1/contacts/"))
	})
}

// probeSequences exercises every sequence route: create, lifecycle, an
// enrollment through its manual-step and exit paths.
func probeSequences(t *testing.T, check checkFunc, base, key, contactID string) {
	do := func(op, path, body string, want int) []byte {
		t.Helper()
		method, _, _ := strings.Cut(op, " ")
		status, h, raw := call(t, method, base+path, key, body)
		check(t, op, status, h, raw)
		if status != want {
			t.Fatalf("%s %s %.300s: %d, want %d: %s", method, path, body, status, want, raw)
		}
		return raw
	}
	tpl := dataID(t, do("POST /api/v1/templates", "/api/v1/templates", `{"name": "Sequence intro", "channel": "email", "content": {
		"subject": "Hello", "text": "Hello {{contact.firstName | default: \"friend\"}}", "from": "alumni@example.edu"}}`, 201))
	do("POST /api/v1/templates/{id}/activate", "/api/v1/templates/"+tpl+"/activate", "", 200)
	seq := dataID(t, do("POST /api/v1/sequences", "/api/v1/sequences", `{"name": "Probe", "ownerId": "agent-1", "steps": [
		{"type": "call", "task": "Call them"}, {"type": "email", "templateId": "`+tpl+`", "delay": "30d"}]}`, 201))
	path := "/api/v1/sequences/" + seq
	do("POST /api/v1/sequences", "/api/v1/sequences", `{"name": "Probe 2", "steps": [{"type": "fax"}]}`, 400)
	do("GET /api/v1/sequences", "/api/v1/sequences?limit=1", "", 200)
	do("GET /api/v1/sequences/{id}", path, "", 200)
	do("GET /api/v1/sequences/{id}", "/api/v1/sequences/no-such-sequence", "", 404)
	do("POST /api/v1/sequences/{id}/enrollments", path+"/enrollments", `{"contactId": "`+contactID+`"}`, 409)
	do("POST /api/v1/sequences/{id}/activate", path+"/activate", "", 200)
	do("POST /api/v1/sequences/{id}/activate", path+"/activate", "", 409)
	enr := dataID(t, do("POST /api/v1/sequences/{id}/enrollments", path+"/enrollments", `{"contactId": "`+contactID+`", "enrolledBy": "agent-1"}`, 201))
	do("POST /api/v1/sequences/{id}/enrollments", path+"/enrollments", `{"contactId": ""}`, 400)
	epath := "/api/v1/sequence-enrollments/" + enr
	bustest.Eventually(t, 10*time.Second, "the enrollment at its call", func() bool {
		_, _, raw := call(t, "GET", base+epath, key, "")
		return strings.Contains(string(raw), `"status":"waiting"`)
	})
	do("GET /api/v1/sequence-enrollments", "/api/v1/sequence-enrollments?sequenceId="+seq+"&status=waiting", "", 200)
	do("GET /api/v1/sequence-enrollments", "/api/v1/sequence-enrollments?status=lost", "", 400)
	do("GET /api/v1/sequence-enrollments/{id}", epath, "", 200)
	do("GET /api/v1/sequence-enrollments/{id}", "/api/v1/sequence-enrollments/no-such-enrollment", "", 404)
	do("POST /api/v1/sequence-enrollments/{id}/complete-step", epath+"/complete-step", `{"completedBy": "agent-1"}`, 200)
	do("POST /api/v1/sequence-enrollments/{id}/complete-step", epath+"/complete-step", `{}`, 409)
	do("POST /api/v1/sequence-enrollments/{id}/exit", epath+"/exit", "", 200)
	do("POST /api/v1/sequence-enrollments/{id}/exit", epath+"/exit", "", 409)
	do("POST /api/v1/sequences/{id}/pause", path+"/pause", "", 200)
}

// probeInbox threads an inbound email (its webhook event emitted as the
// webhooks module would) and exercises every inbox route on it.
func probeInbox(t *testing.T, check checkFunc, a *app.App, base, key, tenantID string) {
	emit(t, a, event.WebhookEmailInbound, tenantID, event.InboundMessageData{Provider: "sendgrid", Channel: event.ChannelEmail,
		ExternalID: "probe-1@example.org", From: "ada@example.org", To: "replies@alumni.example.edu", Subject: "Re: News",
		Text: "Thanks!", ReceivedAt: event.Time{Time: time.Now()}})
	var thread string
	bustest.Eventually(t, 10*time.Second, "the inbound email threaded", func() bool {
		_, _, raw := call(t, "GET", base+"/api/v1/inbox/threads?channel=email", key, "")
		var page struct{ Data []struct{ ID string } }
		if json.Unmarshal(raw, &page) == nil && len(page.Data) > 0 {
			thread = page.Data[0].ID
		}
		return thread != ""
	})
	path := "/api/v1/inbox/threads/" + thread
	runProbes(t, check, base, key, []probe{
		{"GET /api/v1/inbox/threads", "/api/v1/inbox/threads?limit=1&status=open", "", nil, 200},
		{"GET /api/v1/inbox/threads", "/api/v1/inbox/threads?status=archived", "", nil, 400},
		{"GET /api/v1/inbox/threads/{id}", path, "", nil, 200},
		{"GET /api/v1/inbox/threads/{id}", "/api/v1/inbox/threads/no-such-thread", "", nil, 404},
		{"POST /api/v1/inbox/threads/{id}/status", path + "/status", `{"status": "pending"}`, nil, 200},
		{"POST /api/v1/inbox/threads/{id}/status", path + "/status", `{"status": "gone"}`, nil, 400},
		{"POST /api/v1/inbox/threads/{id}/status", "/api/v1/inbox/threads/no-such-thread/status", `{"status": "open"}`, nil, 404},
		{"POST /api/v1/inbox/threads/{id}/assign", path + "/assign", `{"assigneeId": "agent-7", "assignedBy": "lead-1"}`, nil, 200},
		{"POST /api/v1/inbox/threads/{id}/assign", path + "/assign", `{"assigneeId": 7}`, nil, 400},
		{"POST /api/v1/inbox/threads/{id}/assign", "/api/v1/inbox/threads/no-such-thread/assign", `{"assigneeId": "a"}`, nil, 404},
		{"POST /api/v1/inbox/threads/{id}/reply", path + "/reply", `{"text": "Thank you, Ada!", "authorId": "agent-7"}`, nil, 202},
		{"POST /api/v1/inbox/threads/{id}/reply", path + "/reply", `{"text": ""}`, nil, 400},
		{"POST /api/v1/inbox/threads/{id}/reply", "/api/v1/inbox/threads/no-such-thread/reply", `{"text": "hi"}`, nil, 404},
	})
}

// checkFunc is TestOpenAPIMatchesResponses's check of one answer.
type checkFunc func(t *testing.T, key string, status int, header http.Header, raw []byte)

// probe is one request of a probe table: op is the documented operation,
// header holds further headers as name, value pairs.
type probe struct {
	op, path, body string
	header         []string
	want           int
}

func runProbes(t *testing.T, check checkFunc, base, key string, probes []probe) {
	t.Helper()
	for _, r := range probes {
		method, _, _ := strings.Cut(r.op, " ")
		status, header, raw := call(t, method, base+r.path, key, r.body, r.header...)
		if status != r.want {
			t.Errorf("%s %.200s: %d, want %d: %.500s", method, r.path, status, r.want, raw)
		}
		check(t, r.op, status, header, raw)
	}
}

// dataID returns data.id of a JSON answer.
func dataID(t *testing.T, raw []byte) string {
	t.Helper()
	var body struct{ Data struct{ ID string } }
	if json.Unmarshal(raw, &body) != nil || body.Data.ID == "" {
		t.Fatalf("no data.id in %s", raw)
	}
	return body.Data.ID
}

// probeImports uploads small files (imports run in the background, so it
// waits for them), cancels a large one while it runs, and answers a
// command-line import's cancel from the API.
func probeImports(t *testing.T, check checkFunc, a *app.App, cfg config.Config, base, key, tenantID string) {
	const op = "POST /api/v1/contacts/imports"
	csv := []string{"Content-Type", "text/csv; charset=utf-8"}
	upload := func(query, body string, header []string) string {
		t.Helper()
		status, h, raw := call(t, "POST", base+"/api/v1/contacts/imports"+query, key, body, header...)
		check(t, op, status, h, raw)
		if status != http.StatusAccepted {
			t.Fatalf("%s%s: %d %s", op, query, status, raw)
		}
		id := dataID(t, raw)
		if loc := h.Get("Location"); loc != "/api/v1/contacts/imports/"+id {
			t.Errorf("%s: Location %q", op, loc)
		}
		return "/api/v1/contacts/imports/" + id
	}
	// await polls the import until it is no longer running, checking
	// every answer.
	await := func(path string) {
		t.Helper()
		bustest.Eventually(t, 20*time.Second, path+" finished", func() bool {
			status, h, raw := call(t, "GET", base+path, key, "")
			check(t, "GET /api/v1/contacts/imports/{id}", status, h, raw)
			return status == http.StatusOK && !strings.Contains(string(raw), `"status":"running"`)
		})
	}
	imp := upload("", "\ufeffEmail,First Name,surname,mobile,tags,attributes.classYear,attributes.zip:string,consent.email\n"+
		"hedy@example.org,Hedy,Lamarr,+1 415 555 0199,alumni;inventor,1933,02139,yes\n"+
		"not-an-email,Bad,Row,,,,,\n"+
		"short,row\n"+
		"katherine@example.org,Katherine,Johnson,,alumni,1937,,maybe\n"+
		"lise@example.org,Lise,Meitner,,alumni,1939,,no\n", csv)
	await(imp)
	upserted := upload("?mode=upsert", `{"email": "hedy@example.org", "tags": ["actress"]}`+"\n\n"+`{"email": "emmy@example.org", "attributes": {"classYear": 1907}}`+"\n{not json\n",
		[]string{"Content-Type", "application/x-ndjson"})
	await(upserted)

	var big strings.Builder
	big.WriteString("email,attributes.n\n")
	for i := range 20_000 {
		fmt.Fprintf(&big, "bulk%d@example.net,%d\n", i, i)
	}
	running := upload("?mode=create", big.String(), csv)
	status, h, raw := call(t, "DELETE", base+running, key, "")
	check(t, "DELETE /api/v1/contacts/imports/{id}", status, h, raw)
	if status != http.StatusOK {
		t.Errorf("DELETE %s while it runs: %d %s", running, status, raw)
	}

	// An import run by another process (the command line) cannot be
	// cancelled here; its progress shows all the same.
	file := filepath.Join(t.TempDir(), "cli.ndjson")
	if err := os.WriteFile(file, []byte(`{"email": "cli@example.org"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var elsewhere string
	cli, err := app.ContactImporter(a.DB(), cfg, bustest.Logger(t)).Run(context.Background(), tenantID, "ndjson", "create", file, func(p contacts.Import) {
		elsewhere = "/api/v1/contacts/imports/" + p.ID
		status, h, raw := call(t, "DELETE", base+elsewhere, key, "")
		check(t, "DELETE /api/v1/contacts/imports/{id}", status, h, raw)
		if status != http.StatusConflict || !strings.Contains(string(raw), "import_elsewhere") {
			t.Errorf("DELETE %s of a command-line import: %d %s", elsewhere, status, raw)
		}
	})
	if err != nil || cli.Status != contacts.ImportCompleted || elsewhere == "" {
		t.Fatalf("command-line import: %+v %v", cli, err)
	}

	runProbes(t, check, base, key, []probe{
		{"GET /api/v1/contacts/imports/{id}", imp, "", nil, 200},
		{"GET /api/v1/contacts/imports/{id}", elsewhere, "", nil, 200},
		{"GET /api/v1/contacts/imports/{id}", "/api/v1/contacts/imports/no-such-import", "", nil, 404},
		{"GET /api/v1/contacts/imports/{id}/errors", imp + "/errors?limit=2", "", nil, 200},
		{"GET /api/v1/contacts/imports/{id}/errors", upserted + "/errors", "", nil, 200},
		{"GET /api/v1/contacts/imports/{id}/errors", elsewhere + "/errors", "", nil, 200},
		{"GET /api/v1/contacts/imports/{id}/errors", imp + "/errors?limit=0", "", nil, 400},
		{"GET /api/v1/contacts/imports/{id}/errors", imp + "/errors?cursor=nonsense", "", nil, 400},
		{"GET /api/v1/contacts/imports/{id}/errors", "/api/v1/contacts/imports/no-such-import/errors", "", nil, 404},
		{"DELETE /api/v1/contacts/imports/{id}", imp, "", nil, 409},
		{"DELETE /api/v1/contacts/imports/{id}", "/api/v1/contacts/imports/no-such-import", "", nil, 404},
		{op, "/api/v1/contacts/imports", "email,favouriteColour\na@example.org,blue\n", csv, 400},
		{op, "/api/v1/contacts/imports", "firstName\nAda\n", csv, 400},
		{op, "/api/v1/contacts/imports?mode=merge", "email\na@example.org\n", csv, 400},
		{op, "/api/v1/contacts/imports?format=csv", "email\na@example.org\n", csv, 400},
		{op, "/api/v1/contacts/imports", `{"email": "a@example.org"}`, nil, 400},
	})
}

// probeSegments exercises every segment route on the contacts made above,
// once the segments module has seen them.
func probeSegments(t *testing.T, check checkFunc, base, key string) {
	const alumni = `{"all": [{"op": "has_tag", "value": "alumni"}, {"field": "attributes.classYear", "op": "gte", "value": 1930}]}`
	bustest.Eventually(t, 20*time.Second, "the segments module sees the imported alumni", func() bool {
		status, h, raw := call(t, "POST", base+"/api/v1/segments/preview", key, `{"rules": `+alumni+`}`)
		check(t, "POST /api/v1/segments/preview", status, h, raw)
		return status == http.StatusOK && !strings.Contains(string(raw), `"count":0`)
	})
	status, h, raw := call(t, "POST", base+"/api/v1/segments", key, `{"name": "Alumni since 1930", "description": "Tagged alumni, class of 1930 or later", "rules": `+alumni+`}`)
	check(t, "POST /api/v1/segments", status, h, raw)
	if status != http.StatusCreated {
		t.Fatalf("create segment: %d %s", status, raw)
	}
	seg := "/api/v1/segments/" + dataID(t, raw)
	status, h, raw = call(t, "POST", base+"/api/v1/segments", key, `{"name": "Donors", "rules": {"op": "has_tag", "value": "donor"}}`)
	check(t, "POST /api/v1/segments", status, h, raw)
	donors := "/api/v1/segments/" + dataID(t, raw)
	bustest.Eventually(t, 20*time.Second, "the new segment evaluated", func() bool {
		status, h, raw := call(t, "GET", base+seg, key, "")
		check(t, "GET /api/v1/segments/{id}", status, h, raw)
		return strings.Contains(string(raw), `"evaluatedAt"`)
	})
	huge := `{"name": "Huge", "rules": {"field": "email", "op": "in", "value": ["` + strings.Repeat("x", 1<<20) + `"]}}`
	runProbes(t, check, base, key, []probe{
		{"POST /api/v1/segments", "/api/v1/segments", `{"name": "Alumni since 1930", "rules": {"op": "has_tag", "value": "alumni"}}`, nil, 409},
		{"POST /api/v1/segments", "/api/v1/segments", `{"name": "Bad", "rules": {"all": [{"field": "emial", "op": "eq", "value": "a"}]}}`, nil, 400},
		{"POST /api/v1/segments", "/api/v1/segments", `{"name": "Bad"}`, nil, 400},
		{"POST /api/v1/segments", "/api/v1/segments", `{"name": "Bad", "kind": "static", "rules": {"op": "has_tag", "value": "a"}}`, nil, 400},
		{"POST /api/v1/segments", "/api/v1/segments", huge, nil, 413},
		{"GET /api/v1/segments", "/api/v1/segments?limit=1", "", nil, 200},
		{"GET /api/v1/segments", "/api/v1/segments?limit=0", "", nil, 400},
		{"GET /api/v1/segments", "/api/v1/segments?sort=name", "", nil, 400},
		{"POST /api/v1/segments/preview", "/api/v1/segments/preview", `{"rules": {"any": [{"op": "has_consent", "value": "email"},
			{"field": "createdAt", "op": "within_last", "value": "1h"}, {"not": {"field": "attributes.zip", "op": "exists"}}]}}`, nil, 200},
		{"POST /api/v1/segments/preview", "/api/v1/segments/preview", `{"rules": {"op": "has_consent", "value": "fax"}}`, nil, 400},
		{"POST /api/v1/segments/preview", "/api/v1/segments/preview", `{}`, nil, 400},
		{"GET /api/v1/segments/{id}", seg, "", nil, 200},
		{"GET /api/v1/segments/{id}", "/api/v1/segments/no-such-segment", "", nil, 404},
		{"GET /api/v1/segments/{id}/members", seg + "/members?limit=1", "", nil, 200},
		{"GET /api/v1/segments/{id}/members", seg + "/members?cursor=nonsense", "", nil, 400},
		{"GET /api/v1/segments/{id}/members", "/api/v1/segments/no-such-segment/members", "", nil, 404},
		{"PATCH /api/v1/segments/{id}", seg, `{"name": "Alumni since 1900", "rules": {"all": [{"op": "has_tag", "value": "alumni"},
			{"field": "attributes.classYear", "op": "gte", "value": 1900}]}}`, nil, 200},
		{"PATCH /api/v1/segments/{id}", seg, `{}`, nil, 200},
		{"PATCH /api/v1/segments/{id}", seg, `{"name": "Donors"}`, nil, 409},
		{"PATCH /api/v1/segments/{id}", seg, `{"rules": {"not": {"op": "nope"}}}`, nil, 400},
		{"PATCH /api/v1/segments/{id}", seg, `{"rules": null}`, nil, 400},
		{"PATCH /api/v1/segments/{id}", "/api/v1/segments/no-such-segment", `{"name": "x"}`, nil, 404},
		{"POST /api/v1/segments/{id}/evaluate", seg + "/evaluate", "", nil, 200},
		{"POST /api/v1/segments/{id}/evaluate", "/api/v1/segments/no-such-segment/evaluate", "", nil, 404},
		{"DELETE /api/v1/segments/{id}", donors, "", nil, 204},
		{"DELETE /api/v1/segments/{id}", donors, "", nil, 404},
	})
}

// probeTemplates exercises every template route: the lifecycle, versions,
// previews for a stored contact (contactID) and for sample data, and a
// WhatsApp review: approved by the sandbox reviewer through
// TEMPLATES_REVIEW_CONSUMER, and rejected as the webhooks module delivers
// a provider's verdict (ApplyReview).
func probeTemplates(t *testing.T, check checkFunc, a *app.App, base, key, tenantID, contactID string) {
	create := func(body string) string {
		t.Helper()
		status, h, raw := call(t, "POST", base+"/api/v1/templates", key, body)
		check(t, "POST /api/v1/templates", status, h, raw)
		if status != http.StatusCreated {
			t.Fatalf("create template %s: %d %s", body, status, raw)
		}
		id := dataID(t, raw)
		if loc := h.Get("Location"); loc != "/api/v1/templates/"+id {
			t.Errorf("create template: Location %q", loc)
		}
		return "/api/v1/templates/" + id
	}
	email := create(`{"name": "Spring appeal", "channel": "email", "content": {
		"subject": "{{contact.firstName | capitalize | default: \"Friend\"}}, the {{campaign.name}}",
		"html": "<p>Dear {{contact.firstName | default: \"friend\"}},</p>\n<p>Class of {{contact.attributes.classYear}}</p>\n<a href=\"{{unsubscribeUrl}}\">Unsubscribe</a>",
		"text": "Dear {{contact.firstName}}, \\{{ literal }}", "from": "alumni@example.edu", "fromName": "Alumni Office", "replyTo": "replies@example.edu",
		"defaults": {"contact.firstName": "alum", "contact.attributes.classYear": "your year"}}}`)
	wa := create(`{"name": "Reunion invitation", "channel": "whatsapp", "content": {"body": "Hi {{contact.firstName | default: \"there\"}}!",
		"whatsapp": {"name": "reunion_invite", "language": "en_US", "category": "MARKETING", "body": "Hi {{1}}, join us on {{2}}",
		"params": ["{{contact.firstName | default: \"there\"}}", "{{campaign.name}}"]}}}`)
	sms := create(`{"name": "Event reminder", "channel": "sms", "content": {"body": "{{contact.firstName | default: \"Hi\"}}, the reunion starts at 6pm."}}`)
	huge := `{"name": "Huge", "channel": "sms", "content": {"body": "` + strings.Repeat("x", 2<<20) + `"}}`
	const newContent = `{"content": {"subject": "Spring is here, {{contact.firstName | default: \"friend\"}}", "text": "Class of {{contact.attributes.classYear}}: give today."}}`
	runProbes(t, check, base, key, []probe{
		{"POST /api/v1/templates", "/api/v1/templates", `{"name": "Spring appeal", "channel": "sms", "content": {"body": "x"}}`, nil, 409},
		{"POST /api/v1/templates", "/api/v1/templates", `{"name": "Bad", "channel": "email", "content": {"subject": "Hi", "html": "<p>\n  {{contact.frstName}}</p>"}}`, nil, 400},
		{"POST /api/v1/templates", "/api/v1/templates", `{"name": "Bad", "channel": "sms", "content": {"body": "x", "colour": "red"}}`, nil, 400},
		{"POST /api/v1/templates", "/api/v1/templates", `{"name": "Bad", "channel": "fax", "content": {"body": "x"}}`, nil, 400},
		{"POST /api/v1/templates", "/api/v1/templates", huge, nil, 413},
		{"GET /api/v1/templates", "/api/v1/templates?limit=1", "", nil, 200},
		{"GET /api/v1/templates", "/api/v1/templates?channel=whatsapp&status=created", "", nil, 200},
		{"GET /api/v1/templates", "/api/v1/templates?limit=0", "", nil, 400},
		{"GET /api/v1/templates", "/api/v1/templates?cursor=nonsense", "", nil, 400},
		{"GET /api/v1/templates", "/api/v1/templates?kind=email", "", nil, 400},
		{"GET /api/v1/templates/{id}", email, "", nil, 200},
		{"GET /api/v1/templates/{id}", "/api/v1/templates/no-such-template", "", nil, 404},
		{"POST /api/v1/templates/{id}/activate", email + "/activate", "", nil, 200},
		{"POST /api/v1/templates/{id}/activate", email + "/activate", "", nil, 200},
		{"POST /api/v1/templates/{id}/activate", "/api/v1/templates/no-such-template/activate", "", nil, 404},
		{"PATCH /api/v1/templates/{id}", email, newContent, nil, 200},
		{"PATCH /api/v1/templates/{id}", email, newContent, nil, 200},
		{"PATCH /api/v1/templates/{id}", email, `{"name": "Spring appeal 2027", "content": null}`, nil, 200},
		{"PATCH /api/v1/templates/{id}", email, `{}`, nil, 200},
		{"PATCH /api/v1/templates/{id}", email, `{"name": "Event reminder"}`, nil, 409},
		{"PATCH /api/v1/templates/{id}", email, `{"channel": "sms"}`, nil, 400},
		{"PATCH /api/v1/templates/{id}", email, `{"content": {"subject": "Hi {{contact.firstName", "text": "x"}}`, nil, 400},
		{"PATCH /api/v1/templates/{id}", email, `{"name": "x", "content": {"body": "` + strings.Repeat("x", 2<<20) + `"}}`, nil, 413},
		{"PATCH /api/v1/templates/{id}", "/api/v1/templates/no-such-template", `{"name": "x"}`, nil, 404},
		{"GET /api/v1/templates/{id}/versions/{version}", email + "/versions/1", "", nil, 200},
		{"GET /api/v1/templates/{id}/versions/{version}", email + "/versions/2", "", nil, 200},
		{"GET /api/v1/templates/{id}/versions/{version}", email + "/versions/9", "", nil, 404},
		{"GET /api/v1/templates/{id}/versions/{version}", email + "/versions/0", "", nil, 400},
		{"GET /api/v1/templates/{id}/versions/{version}", email + "/versions/latest", "", nil, 400},
		{"GET /api/v1/templates/{id}/versions/{version}", "/api/v1/templates/no-such-template/versions/1", "", nil, 404},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", `{"contactId": "` + contactID + `", "campaign": {"id": "c1", "name": "Spring Appeal"}}`, nil, 200},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", `{"version": 1, "contact": {"firstName": "<b>Grace</b>", "tags": ["alumni"], "attributes": {"classYear": 1928}}}`, nil, 200},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", "", nil, 200},
		{"POST /api/v1/templates/{id}/preview", wa + "/preview", `{"contact": {"firstName": "Ada"}, "campaign": {"name": "Reunion Day"}}`, nil, 200},
		{"POST /api/v1/templates/{id}/preview", sms + "/preview", `{}`, nil, 200},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", `{"contactId": "` + contactID + `", "contact": {}}`, nil, 400},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", `{"contactId": 7}`, nil, 400},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", `{"contactId": "no-such-contact"}`, nil, 404},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", `{"version": 9}`, nil, 404},
		{"POST /api/v1/templates/{id}/preview", "/api/v1/templates/no-such-template/preview", `{}`, nil, 404},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", `{"contact": {"firstName": "` + strings.Repeat("x", 2<<20) + `"}}`, nil, 413},
		{"DELETE /api/v1/templates/{id}", email, "", nil, 409},
		{"POST /api/v1/templates/{id}/archive", email + "/archive", "", nil, 200},
		{"POST /api/v1/templates/{id}/archive", email + "/archive", "", nil, 200},
		{"POST /api/v1/templates/{id}/archive", "/api/v1/templates/no-such-template/archive", "", nil, 404},
		{"PATCH /api/v1/templates/{id}", email, `{"name": "Spring appeal 2028"}`, nil, 409},
		{"POST /api/v1/templates/{id}/preview", email + "/preview", `{"version": 1}`, nil, 200},
		{"DELETE /api/v1/templates/{id}", email, "", nil, 204},
		{"DELETE /api/v1/templates/{id}", email, "", nil, 404},
		{"POST /api/v1/templates/{id}/review", wa + "/review", "", nil, 200},
		{"POST /api/v1/templates/{id}/review", sms + "/review", "", nil, 409},
		{"POST /api/v1/templates/{id}/review", "/api/v1/templates/no-such-template/review", "", nil, 404},
	})

	// The sandbox reviewer approves each submission; a provider's later
	// verdict arrives as the webhooks module hands it over.
	sandboxApproved := func() {
		t.Helper()
		bustest.Eventually(t, 10*time.Second, "the sandbox approves the submitted template", func() bool {
			_, _, raw := call(t, "GET", base+wa, key, "")
			var doc struct {
				Data struct{ Review struct{ Status string } }
			}
			return json.Unmarshal(raw, &doc) == nil && doc.Data.Review.Status == "approved"
		})
	}
	sandboxApproved()
	svc := templates.NewService(a.DB(), a.Outbox(), bustest.Logger(t))
	ctx := context.Background()
	if n, err := svc.ApplyReview(ctx, tenantID, "reunion_invite", "en_US", false, "INVALID_FORMAT", "wa-1"); err != nil || n != 1 {
		t.Fatalf("reject the reviewed template: %d %v", n, err)
	}
	runProbes(t, check, base, key, []probe{
		{"GET /api/v1/templates/{id}", wa, "", nil, 200}, // review.reason, review.providerTemplateId
		{"POST /api/v1/templates/{id}/review", wa + "/review", "", nil, 200},
	})
	sandboxApproved()
	runProbes(t, check, base, key, []probe{
		{"GET /api/v1/templates", "/api/v1/templates?channel=whatsapp", "", nil, 200},
		{"POST /api/v1/templates/{id}/review", wa + "/review", "", nil, 409},
	})
}

// probeIdempotency checks the answers the Idempotency-Key gives every
// authenticated POST: a replay, a key reused for another request, a
// malformed key.
func probeIdempotency(t *testing.T, check checkFunc, base, key string) {
	const op = "POST /api/v1/templates"
	body := `{"name": "Idempotent", "channel": "sms", "content": {"body": "once"}}`
	idem := []string{"Idempotency-Key", "openapi-idempotency-1"}
	var first []byte
	for i := range 2 {
		status, h, raw := call(t, "POST", base+"/api/v1/templates", key, body, idem...)
		check(t, op, status, h, raw)
		if status != http.StatusCreated || (i == 1 && (string(raw) != string(first) || h.Get("Idempotent-Replayed") != "true")) {
			t.Fatalf("%s with an Idempotency-Key, attempt %d: %d %v %s", op, i+1, status, h, raw)
		}
		first = raw
	}
	sms := "/api/v1/templates/" + dataID(t, first)
	runProbes(t, check, base, key, []probe{
		{op, "/api/v1/templates", `{"name": "Another", "channel": "sms", "content": {"body": "x"}}`, idem, 409},
		{"POST /api/v1/templates/{id}/activate", sms + "/activate", "", idem, 409},
		{"POST /api/v1/templates/{id}/preview", sms + "/preview", "", idem, 409},
		{"POST /api/v1/templates/{id}/review", sms + "/review", "", []string{"Idempotency-Key", "two words"}, 400},
		{"POST /api/v1/templates/{id}/archive", sms + "/archive", "", []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400},
		{"POST /api/v1/segments/{id}/evaluate", "/api/v1/segments/no-such-segment/evaluate", "", []string{"Idempotency-Key", "naïve"}, 400},
		{"POST /api/v1/contacts/{id}/erase", "/api/v1/contacts/no-such-contact/erase", "", idem, 409},
		{"POST /api/v1/admin/dlq/replay", "/api/v1/admin/dlq/replay", `{}`, idem, 409},
		{"POST /api/v1/templates/{id}/preview", sms + "/preview", `{"contact": {"firstName": "` + strings.Repeat("x", 1<<20) + `"}}`,
			[]string{"Idempotency-Key", "openapi-idempotency-big"}, 413},
	})
}

// probeMessages sends messages through the pipeline to the sandbox: to a
// contact with consent (sent, and its repeat), one without (blocked), a
// suppressed address (blocked), with a template that does not exist
// (failed), and a WhatsApp provider template; then the suppression routes.
func probeMessages(t *testing.T, check checkFunc, base, key string) {
	post := func(op, path, body string, want int) string {
		t.Helper()
		status, h, raw := call(t, "POST", base+path, key, body)
		check(t, op, status, h, raw)
		if status != want {
			t.Fatalf("%s %s: %d, want %d: %s", op, body, status, want, raw)
		}
		return dataID(t, raw)
	}
	contact := func(body string) string {
		t.Helper()
		return post("POST /api/v1/contacts", "/api/v1/contacts", body, http.StatusCreated)
	}
	template := func(body string) string {
		t.Helper()
		id := post("POST /api/v1/templates", "/api/v1/templates", body, http.StatusCreated)
		post("POST /api/v1/templates/{id}/activate", "/api/v1/templates/"+id+"/activate", "", http.StatusOK)
		return id
	}
	hopper := contact(`{"email": "Grace.Hopper@Example.org", "firstName": "Grace", "consent": {"email": {"granted": true, "source": "signup_form"}}}`)
	noConsent := contact(`{"email": "noconsent@example.org", "firstName": "Alan"}`)
	gone := contact(`{"email": "gone@example.org", "consent": {"email": {"granted": true, "source": "crm"}}}`)
	wa := contact(`{"phone": "+1 415 555 0123", "firstName": "Radia", "consent": {"whatsapp": {"granted": true, "source": "whatsapp_optin"}}}`)
	receipt := template(`{"name": "Gift receipt", "channel": "email", "content": {"subject": "Thank you, {{contact.firstName | default: \"friend\"}}",
		"html": "<p>Thank you for your gift, {{contact.firstName}}.</p>", "text": "Thank you for your gift.", "from": "giving@example.edu"}}`)
	invite := template(`{"name": "Reunion reminder", "channel": "whatsapp", "content": {"whatsapp": {"name": "reunion_reminder", "language": "en_US",
		"category": "UTILITY", "body": "Hi {{1}}, see you on Saturday", "params": ["{{contact.firstName | default: \"there\"}}"]}}}`)

	send := func(contactID, channel, templateID, sourceID string, want int) string {
		t.Helper()
		body := fmt.Sprintf(`{"contactId": %q, "channel": %q, "templateId": %q, "sourceId": %q}`, contactID, channel, templateID, sourceID)
		status, h, raw := call(t, "POST", base+"/api/v1/messages", key, body)
		check(t, "POST /api/v1/messages", status, h, raw)
		if status != want {
			t.Fatalf("POST /api/v1/messages %s: %d, want %d: %s", body, status, want, raw)
		}
		id := dataID(t, raw)
		if loc := h.Get("Location"); loc != "/api/v1/messages/"+id {
			t.Errorf("POST /api/v1/messages: Location %q", loc)
		}
		return id
	}
	// await polls the message until it is sent, failed or blocked,
	// checking every answer, and returns its status and errorCode.
	await := func(id string) (string, string) {
		t.Helper()
		var got, code string
		bustest.Eventually(t, 20*time.Second, "message "+id+" sent, failed or blocked", func() bool {
			status, h, raw := call(t, "GET", base+"/api/v1/messages/"+id, key, "")
			check(t, "GET /api/v1/messages/{id}", status, h, raw)
			var m struct {
				Data struct{ Status, ErrorCode string }
			}
			_ = json.Unmarshal(raw, &m)
			got, code = m.Data.Status, m.Data.ErrorCode
			return status == http.StatusOK && (got == "sent" || got == "delivered" || got == "failed" || got == "blocked")
		})
		return got, code
	}

	// The suppressed address is suppressed before its message is asked for.
	runProbes(t, check, base, key, []probe{
		{"POST /api/v1/suppressions", "/api/v1/suppressions", `{"channel": "email", "address": "Gone@Example.org"}`, nil, 201},
		{"POST /api/v1/suppressions", "/api/v1/suppressions", `{"channel": "email", "address": "gone@example.org"}`, nil, 201},
		{"POST /api/v1/suppressions", "/api/v1/suppressions", `{"channel": "sms", "address": "+14155550100"}`, nil, 201},
	})
	sent := send(hopper, "email", receipt, "openapi-receipt-1", http.StatusAccepted)
	blocked := send(noConsent, "email", receipt, "openapi-receipt-1", http.StatusAccepted)
	suppressed := send(gone, "email", receipt, "openapi-receipt-1", http.StatusAccepted)
	failed := send(hopper, "email", "no-such-template", "openapi-receipt-2", http.StatusAccepted)
	whatsapp := send(wa, "whatsapp", invite, "openapi-reunion", http.StatusAccepted)
	for id, want := range map[string][2]string{sent: {"sent", ""}, blocked: {"blocked", "no_consent"}, suppressed: {"blocked", "suppressed"},
		failed: {"failed", "template_error"}, whatsapp: {"sent", ""}} {
		status, code := await(id)
		if want[0] == "sent" && status == "delivered" {
			status = "sent" // the sandbox reports delivery as soon as it accepts
		}
		if status != want[0] || code != want[1] {
			t.Errorf("message %s: %s %q, want %s %q", id, status, code, want[0], want[1])
		}
	}
	if again := send(hopper, "email", receipt, "openapi-receipt-1", http.StatusOK); again != sent {
		t.Errorf("the same sourceId, contact and channel again made message %s, not %s", again, sent)
	}
	huge := `{"contactId": "` + strings.Repeat("x", 1<<20) + `", "channel": "email", "templateId": "x"}`
	runProbes(t, check, base, key, []probe{
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "fax", "templateId": "` + receipt + `"}`, nil, 400},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "email"}`, nil, 400},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "email", "templateId": "x", "templateVersion": -1}`, nil, 400},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "sms", "templateId": "x"}`, nil, 400},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "email", "templateId": "x", "priority": 1}`, nil, 400},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "no-such-contact", "channel": "email", "templateId": "x"}`, nil, 404},
		{"POST /api/v1/messages", "/api/v1/messages", huge, nil, 413},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "email", "templateId": "` + receipt + `", "sourceId": "openapi-idem"}`,
			[]string{"Idempotency-Key", "openapi-message-1"}, 202},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "email", "templateId": "` + receipt + `", "sourceId": "openapi-idem"}`,
			[]string{"Idempotency-Key", "openapi-message-1"}, 202},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "email", "templateId": "` + receipt + `", "sourceId": "openapi-idem"}`,
			[]string{"Idempotency-Key", "openapi-message-2"}, 200},
		{"POST /api/v1/messages", "/api/v1/messages", `{"contactId": "` + hopper + `", "channel": "email", "templateId": "` + receipt + `"}`,
			[]string{"Idempotency-Key", "openapi-message-1"}, 409},
		{"GET /api/v1/messages/{id}", "/api/v1/messages/" + sent, "", nil, 200},
		{"GET /api/v1/messages/{id}", "/api/v1/messages/no-such-message", "", nil, 404},
		{"GET /api/v1/sandbox/messages", "/api/v1/sandbox/messages", "", nil, 200},
		{"GET /api/v1/sandbox/messages", "/api/v1/sandbox/messages?limit=1", "", nil, 200},
		{"GET /api/v1/sandbox/messages", "/api/v1/sandbox/messages?to=%2B14155550123", "", nil, 200},
		{"GET /api/v1/sandbox/messages", "/api/v1/sandbox/messages?to=grace.hopper@example.org&limit=1", "", nil, 200},
		{"GET /api/v1/sandbox/messages", "/api/v1/sandbox/messages?limit=0", "", nil, 400},
		{"GET /api/v1/sandbox/messages", "/api/v1/sandbox/messages?cursor=nonsense", "", nil, 400},
		{"GET /api/v1/sandbox/messages", "/api/v1/sandbox/messages?channel=email", "", nil, 400},
		{"GET /api/v1/suppressions", "/api/v1/suppressions", "", nil, 200},
		{"GET /api/v1/suppressions", "/api/v1/suppressions?limit=1", "", nil, 200},
		{"GET /api/v1/suppressions", "/api/v1/suppressions?channel=sms", "", nil, 200},
		{"GET /api/v1/suppressions", "/api/v1/suppressions?limit=501", "", nil, 400},
		{"GET /api/v1/suppressions", "/api/v1/suppressions?cursor=nonsense", "", nil, 400},
		{"GET /api/v1/suppressions", "/api/v1/suppressions?reason=manual", "", nil, 400},
		{"POST /api/v1/suppressions", "/api/v1/suppressions", `{"channel": "fax", "address": "x"}`, nil, 400},
		{"POST /api/v1/suppressions", "/api/v1/suppressions", `{"channel": "sms", "address": "0207 946 0958"}`, nil, 400},
		{"POST /api/v1/suppressions", "/api/v1/suppressions", `{"channel": "email", "address": "", "reason": "x"}`, nil, 400},
		{"POST /api/v1/suppressions", "/api/v1/suppressions", `{"channel": "email", "address": "` + strings.Repeat("x", 1<<20) + `"}`, nil, 413},
		{"DELETE /api/v1/suppressions/{channel}/{address}", "/api/v1/suppressions/email/GONE@example.org", "", nil, 204},
		{"DELETE /api/v1/suppressions/{channel}/{address}", "/api/v1/suppressions/email/gone@example.org", "", nil, 404},
		{"DELETE /api/v1/suppressions/{channel}/{address}", "/api/v1/suppressions/sms/+14155550100", "", nil, 204},
		{"DELETE /api/v1/suppressions/{channel}/{address}", "/api/v1/suppressions/fax/x", "", nil, 400},
	})
	// The sandbox kept what the providers were given: the email rendered
	// for Grace (followed by the open pixel when opens are tracked), the
	// WhatsApp provider template with its parameter.
	status, _, raw := call(t, "GET", base+"/api/v1/sandbox/messages", key, "")
	var sandbox struct {
		Data []struct {
			MessageID, To, Subject, HTML string
			Template                     *struct {
				Name   string
				Params []string
			}
		}
	}
	if status != http.StatusOK || json.Unmarshal(raw, &sandbox) != nil {
		t.Fatalf("GET /api/v1/sandbox/messages: %d %s", status, raw)
	}
	found := 0
	for _, m := range sandbox.Data {
		switch m.MessageID {
		case blocked, suppressed, failed:
			t.Errorf("message %s was not to be sent, and reached the sandbox", m.MessageID)
		case sent:
			found++
			if m.To != "grace.hopper@example.org" || m.Subject != "Thank you, Grace" || !strings.HasPrefix(m.HTML, "<p>Thank you for your gift, Grace.</p>") {
				t.Errorf("sandbox email %+v", m)
			}
		case whatsapp:
			found++
			if m.To != "+14155550123" || m.Template == nil || m.Template.Name != "reunion_reminder" || !slices.Equal(m.Template.Params, []string{"Radia"}) {
				t.Errorf("sandbox WhatsApp message %+v", m)
			}
		}
	}
	if found != 2 {
		t.Errorf("the sandbox holds %d of the two messages sent: %s", found, raw)
	}
}

func mustPointer(t *testing.T, d openAPI, ref string) any {
	t.Helper()
	v, ok := d.pointer(ref)
	if !ok {
		t.Fatalf("the document has no %s", ref)
	}
	return v
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fits checks v against the subset of JSON Schema the document uses (type,
// required, properties, additionalProperties, items, enum, const) and
// returns the problems. An object's fields must all be documented unless
// its schema leaves properties open; the fields of a map (additionalProperties
// a schema) must each fit that schema.
func (d openAPI) fits(schema, v any, at string) []string {
	s := d.resolve(schema)
	if s == nil {
		return nil // {} or no schema: anything goes
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, at+": "+fmt.Sprintf(format, args...)) }
	if types := schemaTypes(s["type"]); len(types) > 0 && !slices.Contains(types, jsonType(v)) &&
		!(jsonType(v) == "integer" && slices.Contains(types, "number")) {
		bad("is %s, the schema says %v", jsonType(v), types)
		return problems
	}
	if c, ok := s["const"]; ok && c != v {
		bad("is %v, the schema says %v", v, c)
	}
	if e := asSlice(s["enum"]); e != nil && !slices.Contains(e, v) {
		bad("is %v, not one of %v", v, e)
	}
	switch v := v.(type) {
	case map[string]any:
		for _, r := range asSlice(s["required"]) {
			if _, ok := v[r.(string)]; !ok {
				bad("lacks the required field %q", r)
			}
		}
		props, hasProps := s["properties"].(map[string]any)
		extra, _ := s["additionalProperties"].(map[string]any) // a map's values
		for k, fv := range v {
			if ps, ok := props[k]; ok {
				problems = append(problems, d.fits(ps, fv, at+"."+k)...)
			} else if extra != nil {
				problems = append(problems, d.fits(extra, fv, at+"."+k)...)
			} else if hasProps && s["additionalProperties"] != true {
				bad("has field %q, which the document does not describe", k)
			}
		}
	case []any:
		for i, item := range v {
			problems = append(problems, d.fits(s["items"], item, at+"["+strconv.Itoa(i)+"]")...)
		}
	}
	return problems
}

func schemaTypes(t any) []string {
	switch t := t.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// probeCampaigns exercises every campaign route: a draft edited,
// scheduled (at one moment, then at each recipient's local time) and
// taken off the schedule, started, paused, resumed and cancelled, its
// stats, report and a test send. The started campaign is capped at one
// message in about 17 minutes (rate 0.001), so nothing is sent and it is
// still started, not completed, when paused and cancelled; its audience
// is evaluated before the start, so it is not empty either.
func probeCampaigns(t *testing.T, check checkFunc, base, key string) {
	post := func(op, path, body string, want int) []byte {
		t.Helper()
		method, _, _ := strings.Cut(op, " ")
		status, h, raw := call(t, method, base+path, key, body)
		check(t, op, status, h, raw)
		if status != want {
			t.Fatalf("%s %s %s: %d, want %d: %s", method, path, body, status, want, raw)
		}
		return raw
	}
	audience := dataID(t, post("POST /api/v1/segments", "/api/v1/segments", `{"name": "Campaign audience", "rules": {"op": "has_tag", "value": "alumni"}}`, 201))
	excluded := dataID(t, post("POST /api/v1/segments", "/api/v1/segments", `{"name": "Campaign exclusions", "rules": {"op": "has_tag", "value": "do-not-mail"}}`, 201))
	var evaluated struct{ Data struct{ Members int64 } }
	if raw := post("POST /api/v1/segments/{id}/evaluate", "/api/v1/segments/"+audience+"/evaluate", "", 200); json.Unmarshal(raw, &evaluated) != nil || evaluated.Data.Members == 0 {
		t.Fatalf("the campaign's audience segment has no members: %s", raw)
	}
	tpl := dataID(t, post("POST /api/v1/templates", "/api/v1/templates", `{"name": "Campaign appeal", "channel": "email", "content": {
		"subject": "{{contact.firstName | default: \"Friend\"}}, the {{campaign.name}}", "text": "Give today.", "from": "alumni@example.edu"}}`, 201))
	post("POST /api/v1/templates/{id}/activate", "/api/v1/templates/"+tpl+"/activate", "", 200)
	draftTpl := dataID(t, post("POST /api/v1/templates", "/api/v1/templates", `{"name": "Campaign draft", "channel": "email", "content": {"subject": "Draft", "text": "Not yet."}}`, 201))
	sms := dataID(t, post("POST /api/v1/templates", "/api/v1/templates", `{"name": "Campaign reminder", "channel": "sms", "content": {"body": "See you there."}}`, 201))

	body := fmt.Sprintf(`{"name": "Spring appeal", "channel": "email", "templateId": %q, "segmentIds": [%q, %q], "excludeSegmentIds": [%q],
		"sender": {"from": "giving@example.edu", "fromName": "Office of Giving"}, "rate": 0.001}`, tpl, audience, audience, excluded)
	status, h, raw := call(t, "POST", base+"/api/v1/campaigns", key, body)
	check(t, "POST /api/v1/campaigns", status, h, raw)
	if status != http.StatusCreated {
		t.Fatalf("create campaign: %d %s", status, raw)
	}
	id := dataID(t, raw)
	if loc := h.Get("Location"); loc != "/api/v1/campaigns/"+id {
		t.Errorf("create campaign: Location %q", loc)
	}
	c := "/api/v1/campaigns/" + id
	draft := "/api/v1/campaigns/" + dataID(t, post("POST /api/v1/campaigns", "/api/v1/campaigns",
		fmt.Sprintf(`{"name": "Not ready", "channel": "email", "templateId": %q, "segmentIds": [%q]}`, draftTpl, audience), 201))
	const none = "/api/v1/campaigns/no-such-campaign"
	at := func(d time.Duration) string {
		return fmt.Sprintf(`{"at": %q}`, time.Now().Add(d).UTC().Format(time.RFC3339))
	}
	local := fmt.Sprintf(`{"localTime": "09:00", "date": %q, "timeZone": "America/New_York"}`, time.Now().AddDate(0, 0, 2).Format(time.DateOnly))
	// wantStatus reads the campaign and checks its status.
	wantStatus := func(path, want string) {
		t.Helper()
		raw := post("GET /api/v1/campaigns/{id}", path, "", 200)
		var got struct{ Data struct{ Status string } }
		if json.Unmarshal(raw, &got) != nil || got.Data.Status != want {
			t.Errorf("campaign %s: status %q, want %q: %s", path, got.Data.Status, want, raw)
		}
	}
	// wantCode sends one request that must fail with code.
	wantCode := func(op, path, body string, want int, code string, header ...string) {
		t.Helper()
		method, _, _ := strings.Cut(op, " ")
		status, h, raw := call(t, method, base+path, key, body, header...)
		check(t, op, status, h, raw)
		if status != want || !strings.Contains(string(raw), `"code":"`+code+`"`) {
			t.Errorf("%s %s %s: %d %s, want %d %s", method, path, body, status, raw, want, code)
		}
	}

	runProbes(t, check, base, key, []probe{
		{"POST /api/v1/campaigns", "/api/v1/campaigns", `{"name": "x", "channel": "fax", "templateId": "` + tpl + `", "segmentIds": ["` + audience + `"]}`, nil, 400},
		{"POST /api/v1/campaigns", "/api/v1/campaigns", `{"name": "x", "channel": "email", "templateId": "` + tpl + `"}`, nil, 400},
		{"POST /api/v1/campaigns", "/api/v1/campaigns", `{"name": "x", "channel": "email", "templateId": "` + tpl + `", "segmentIds": ["no-such-segment"]}`, nil, 400},
		{"POST /api/v1/campaigns", "/api/v1/campaigns", `{"name": "x", "channel": "sms", "templateId": "` + tpl + `", "segmentIds": ["` + audience + `"]}`, nil, 400},
		{"POST /api/v1/campaigns", "/api/v1/campaigns", `{"name": "x", "channel": "sms", "templateId": "` + sms + `", "segmentIds": ["` + audience + `"], "sender": {"from": "a@example.edu"}}`, nil, 400},
		{"POST /api/v1/campaigns", "/api/v1/campaigns", `{"name": "x", "channel": "email", "templateId": "` + tpl + `", "segmentIds": ["` + audience + `"], "rate": -1}`, nil, 400},
		{"POST /api/v1/campaigns", "/api/v1/campaigns", `{"name": "x", "channel": "email", "templateId": "` + tpl + `", "segmentIds": ["` + audience + `"], "priority": 1}`, nil, 400},
		{"POST /api/v1/campaigns", "/api/v1/campaigns", `{"name": "` + strings.Repeat("x", 70<<10) + `"}`, nil, 413},
		{"GET /api/v1/campaigns", "/api/v1/campaigns", "", nil, 200},
		{"GET /api/v1/campaigns", "/api/v1/campaigns?status=created&limit=1", "", nil, 200},
		{"GET /api/v1/campaigns", "/api/v1/campaigns?status=draft", "", nil, 400},
		{"GET /api/v1/campaigns", "/api/v1/campaigns?limit=0", "", nil, 400},
		{"GET /api/v1/campaigns", "/api/v1/campaigns?cursor=nonsense", "", nil, 400},
		{"GET /api/v1/campaigns", "/api/v1/campaigns?channel=email", "", nil, 400},
		{"GET /api/v1/campaigns/{id}", c, "", nil, 200},
		{"GET /api/v1/campaigns/{id}", none, "", nil, 404},
		{"PATCH /api/v1/campaigns/{id}", c, `{"name": "Spring appeal 2027", "sender": {"from": "giving@example.edu", "replyTo": "replies@example.edu"}}`, []string{"If-Match", `"1"`}, 200},
		{"PATCH /api/v1/campaigns/{id}", c, `{"name": null, "excludeSegmentIds": ["` + excluded + `"]}`, nil, 200},
		{"PATCH /api/v1/campaigns/{id}", c, `{"templateId": "` + sms + `"}`, nil, 400},
		{"PATCH /api/v1/campaigns/{id}", c, `{"segmentIds": []}`, nil, 400},
		{"PATCH /api/v1/campaigns/{id}", c, `{"status": "started"}`, nil, 400},
		{"PATCH /api/v1/campaigns/{id}", none, `{"name": "x"}`, nil, 404},
		{"POST /api/v1/campaigns/{id}/schedule", c + "/schedule", at(time.Hour), nil, 200},
		{"POST /api/v1/campaigns/{id}/schedule", c + "/schedule", local, nil, 200},
		{"POST /api/v1/campaigns/{id}/schedule", c + "/schedule", `{"at": "2030-01-01T09:00", "timeZone": "Mars/Olympus"}`, nil, 400},
		{"POST /api/v1/campaigns/{id}/schedule", c + "/schedule", `{"at": "2030-01-01T09:00", "localTime": "09:00"}`, nil, 400},
		{"POST /api/v1/campaigns/{id}/schedule", c + "/schedule", `{}`, nil, 400},
		{"POST /api/v1/campaigns/{id}/schedule", none + "/schedule", at(time.Hour), nil, 404},
		{"PATCH /api/v1/campaigns/{id}", c, `{"rate": 0.001}`, nil, 200}, // scheduled campaigns can be edited
		{"DELETE /api/v1/campaigns/{id}/schedule", c + "/schedule", "", nil, 200},
		{"DELETE /api/v1/campaigns/{id}/schedule", none + "/schedule", "", nil, 404},
		{"POST /api/v1/campaigns/{id}/start", none + "/start", "", nil, 404},
		{"POST /api/v1/campaigns/{id}/pause", none + "/pause", "", nil, 404},
		{"POST /api/v1/campaigns/{id}/resume", none + "/resume", "", nil, 404},
		{"POST /api/v1/campaigns/{id}/cancel", none + "/cancel", "", nil, 404},
		{"GET /api/v1/campaigns/{id}/stats", c + "/stats", "", nil, 200},
		{"GET /api/v1/campaigns/{id}/stats", none + "/stats", "", nil, 404},
		{"GET /api/v1/campaigns/{id}/report", c + "/report", "", nil, 200},
		{"GET /api/v1/campaigns/{id}/report", none + "/report", "", nil, 404},
		{"POST /api/v1/campaigns/{id}/test", c + "/test", `{"to": "me@example.edu"}`, nil, 200},
		{"POST /api/v1/campaigns/{id}/test", c + "/test", `{"to": "+14155550123"}`, nil, 400},
		{"POST /api/v1/campaigns/{id}/test", c + "/test", `{"to": "me@example.edu", "subject": "x"}`, nil, 400},
		{"POST /api/v1/campaigns/{id}/test", c + "/test", `{"to": "me@example.edu", "contactId": "no-such-contact"}`, nil, 404},
		{"POST /api/v1/campaigns/{id}/test", none + "/test", `{"to": "me@example.edu"}`, nil, 404},
	})
	wantStatus(c, "created")
	wantCode("PATCH /api/v1/campaigns/{id}", c, `{"name": "Stale"}`, 409, "version_mismatch", "If-Match", "1")
	wantCode("PATCH /api/v1/campaigns/{id}", c, `{"name": "Stale"}`, 400, "invalid_if_match", "If-Match", `W/"1"`)
	wantCode("POST /api/v1/campaigns/{id}/schedule", c+"/schedule", at(-time.Hour), 400, "invalid_field")
	wantCode("DELETE /api/v1/campaigns/{id}/schedule", c+"/schedule", "", 409, "illegal_transition")
	wantCode("POST /api/v1/campaigns/{id}/pause", c+"/pause", "", 409, "illegal_transition")
	wantCode("POST /api/v1/campaigns/{id}/resume", c+"/resume", "", 409, "illegal_transition")
	wantCode("POST /api/v1/campaigns/{id}/start", draft+"/start", "", 409, "template_not_active")
	wantCode("GET /api/v1/campaigns/{id}/report", c+"/report?interval=week", "", 400, "invalid_interval")
	wantCode("GET /api/v1/campaigns", "/api/v1/campaigns?status=draft", "", 400, "invalid_status")

	// Started: nothing goes out at a rate of 0.001 a second, so it stays
	// started until paused and cancelled.
	runProbes(t, check, base, key, []probe{
		{"POST /api/v1/campaigns/{id}/schedule", c + "/schedule", at(time.Hour), nil, 200},
		{"POST /api/v1/campaigns/{id}/start", c + "/start", "", nil, 200},
	})
	wantStatus(c, "started")
	wantCode("POST /api/v1/campaigns/{id}/start", c+"/start", "", 409, "illegal_transition")
	wantCode("PATCH /api/v1/campaigns/{id}", c, `{"name": "Too late"}`, 409, "illegal_transition")
	wantCode("POST /api/v1/campaigns/{id}/schedule", c+"/schedule", at(time.Hour), 409, "illegal_transition")
	runProbes(t, check, base, key, []probe{
		{"POST /api/v1/campaigns/{id}/pause", c + "/pause", "", nil, 200},
		{"POST /api/v1/campaigns/{id}/pause", c + "/pause", "", nil, 409},
		{"POST /api/v1/campaigns/{id}/resume", c + "/resume", "", nil, 200},
		{"GET /api/v1/campaigns/{id}/stats", c + "/stats", "", nil, 200},
		{"GET /api/v1/campaigns/{id}/report", c + "/report?interval=minute", "", nil, 200},
		{"GET /api/v1/campaigns/{id}/report", c + "/report?interval=day", "", nil, 200},
		{"GET /api/v1/campaigns/{id}/report", c + "/report?from=yesterday", "", nil, 400},
		{"POST /api/v1/campaigns/{id}/test", c + "/test", `{"to": "me@example.edu"}`, nil, 200},
		{"GET /api/v1/campaigns", "/api/v1/campaigns?status=started", "", nil, 200},
		{"POST /api/v1/campaigns/{id}/cancel", c + "/cancel", "", nil, 200},
		{"POST /api/v1/campaigns/{id}/cancel", c + "/cancel", "", nil, 409},
		{"POST /api/v1/campaigns/{id}/resume", c + "/resume", "", nil, 409},
		{"POST /api/v1/campaigns/{id}/cancel", draft + "/cancel", "", nil, 200},
		{"GET /api/v1/campaigns/{id}/stats", c + "/stats", "", nil, 200},
		{"GET /api/v1/campaigns/{id}/report", c + "/report", "", nil, 200},
	})
	wantStatus(c, "cancelled")
	wantStatus(draft, "cancelled")
}

// probeWorkflows exercises every workflow route: a workflow with every
// node type created, read (at its current version and an earlier one),
// given a new version, activated and paused; runs started by custom
// events, listed and read with their paths; the stats of each version;
// and the refusals: an invalid definition, a name taken, a stale
// If-Match, illegal transitions, a template not active or gone.
// contactID is a contact with email consent.
func probeWorkflows(t *testing.T, check checkFunc, base, key, contactID string) {
	do := func(op, path, body string, want int, header ...string) []byte {
		t.Helper()
		method, _, _ := strings.Cut(op, " ")
		status, h, raw := call(t, method, base+path, key, body, header...)
		check(t, op, status, h, raw)
		if status != want {
			t.Fatalf("%s %s %.300s: %d, want %d: %s", method, path, body, status, want, raw)
		}
		return raw
	}
	// wantCode sends one request that must fail with code.
	wantCode := func(op, path, body string, want int, code string, header ...string) []byte {
		t.Helper()
		method, _, _ := strings.Cut(op, " ")
		status, h, raw := call(t, method, base+path, key, body, header...)
		check(t, op, status, h, raw)
		if status != want || !strings.Contains(string(raw), `"code":"`+code+`"`) {
			t.Errorf("%s %s %.300s: %d %s, want %d %s", method, path, body, status, raw, want, code)
		}
		return raw
	}
	template := func(name string, activate bool) string {
		t.Helper()
		id := dataID(t, do("POST /api/v1/templates", "/api/v1/templates", fmt.Sprintf(`{"name": %q, "channel": "email", "content": {
			"subject": "Hello {{contact.firstName | default: \"friend\"}}", "text": "Thank you.", "from": "alumni@example.edu"}}`, name), 201))
		if activate {
			do("POST /api/v1/templates/{id}/activate", "/api/v1/templates/"+id+"/activate", "", 200)
		}
		return id
	}
	tpl := template("Workflow welcome", true)
	draft := template("Workflow draft", false)
	gone := template("Workflow gone", false)
	seg := dataID(t, do("POST /api/v1/segments", "/api/v1/segments", `{"name": "Workflow audience", "rules": {"op": "has_tag", "value": "alumni"}}`, 201))

	// Every node type, and every field of each.
	journey := func(name, last string) string {
		return fmt.Sprintf(`{"name": %q, "trigger": {"event": "custom", "name": "openapi_probe"}, "reentry": "always",
			"nodes": [
				{"id": "welcome", "type": "send", "channel": "email", "templateId": %q, "next": "recent"},
				{"id": "recent", "type": "condition", "rule": {"all": [{"op": "has_tag", "value": "alumni"}]}, "yes": "ab", "no": "done"},
				{"id": "ab", "type": "split", "branches": [{"name": "a", "percent": 50, "next": "mark"}, {"name": "b", "percent": 50, "next": "seen"}]},
				{"id": "mark", "type": "update_contact", "setAttributes": {"journey": "welcome", "score": 1.5, "old": null}, "addTags": ["welcomed"], "removeTags": ["cold"], "next": "seen"},
				{"id": "seen", "type": "wait_until", "event": "delivered", "nodeId": "welcome", "timeout": "1h", "next": "morning", "timeoutNext": "done"},
				{"id": "morning", "type": "delay", "until": "09:00", "next": "rsvp"},
				{"id": "rsvp", "type": "wait_until", "rule": {"field": "attributes.rsvp", "op": "eq", "value": true}, "timeout": "3d", "next": "later", "timeoutNext": "done"},
				{"id": "later", "type": "delay", "duration": "1d12h", "next": "done"},
				%s
			],
			"goals": [{"id": "gave", "name": "Gave", "rule": {"field": "attributes.gave", "op": "eq", "value": true}}]}`, name, tpl, last)
	}
	status, h, raw := call(t, "POST", base+"/api/v1/workflows", key, journey("Welcome journey", `{"id": "done", "type": "exit"}`))
	check(t, "POST /api/v1/workflows", status, h, raw)
	if status != http.StatusCreated {
		t.Fatalf("create workflow: %d %s", status, raw)
	}
	id := dataID(t, raw)
	if loc := h.Get("Location"); loc != "/api/v1/workflows/"+id {
		t.Errorf("create workflow: Location %q", loc)
	}
	wf := "/api/v1/workflows/" + id
	quick := "/api/v1/workflows/" + dataID(t, do("POST /api/v1/workflows", "/api/v1/workflows", `{"name": "Quick journey",
		"trigger": {"event": "custom", "name": "openapi_quick"},
		"nodes": [{"id": "tag", "type": "update_contact", "addTags": ["journeyed"], "next": "end"}, {"id": "end", "type": "exit"}]}`, 201))
	sendOf := func(name, template string) string {
		return fmt.Sprintf(`{"name": %q, "trigger": {"event": "contact.created"}, "nodes": [{"id": "s", "type": "send", "channel": "email", "templateId": %q}]}`, name, template)
	}
	drafty := "/api/v1/workflows/" + dataID(t, do("POST /api/v1/workflows", "/api/v1/workflows", sendOf("Drafty", draft), 201))
	orphan := "/api/v1/workflows/" + dataID(t, do("POST /api/v1/workflows", "/api/v1/workflows", sendOf("Orphan", gone), 201))
	do("DELETE /api/v1/templates/{id}", "/api/v1/templates/"+gone, "", 204)
	// The other triggers.
	for i, trigger := range []string{`{"event": "contact.updated", "rule": {"field": "attributes.classYear", "op": "gte", "value": 2000}}`,
		`{"event": "contact.tagged", "tag": "Prospect"}`, fmt.Sprintf(`{"event": "segment.member.added", "segmentId": %q}`, seg),
		fmt.Sprintf(`{"event": "segment.member.removed", "segmentId": %q}`, seg)} {
		do("POST /api/v1/workflows", "/api/v1/workflows", fmt.Sprintf(`{"name": "Trigger %d", "trigger": %s, "reentry": "after_exit",
			"nodes": [{"id": "x", "type": "exit"}]}`, i, trigger), 201)
	}
	const none = "/api/v1/workflows/no-such-workflow"

	runProbes(t, check, base, key, []probe{
		{"POST /api/v1/workflows", "/api/v1/workflows", journey("Welcome journey", `{"id": "done", "type": "exit"}`), nil, 409},
		{"POST /api/v1/workflows", "/api/v1/workflows", journey("Bad", `{"id": "done", "type": "teleport"}`), nil, 400},
		{"POST /api/v1/workflows", "/api/v1/workflows", `{"name": "Bad", "trigger": {"event": "contact.created"}, "nodes": [{"id": "x", "type": "exit"}], "colour": "blue"}`, nil, 400},
		{"POST /api/v1/workflows", "/api/v1/workflows", `{"name": "Bad", "trigger": {"event": "contact.created", "tag": "x"}, "nodes": [{"id": "x", "type": "exit"}]}`, nil, 400},
		{"POST /api/v1/workflows", "/api/v1/workflows", `{"name": "` + strings.Repeat("x", 300<<10) + `"}`, nil, 413},
		{"GET /api/v1/workflows", "/api/v1/workflows", "", nil, 200},
		{"GET /api/v1/workflows", "/api/v1/workflows?status=created&limit=2", "", nil, 200},
		{"GET /api/v1/workflows", "/api/v1/workflows?status=draft", "", nil, 400},
		{"GET /api/v1/workflows", "/api/v1/workflows?limit=0", "", nil, 400},
		{"GET /api/v1/workflows", "/api/v1/workflows?cursor=nonsense", "", nil, 400},
		{"GET /api/v1/workflows", "/api/v1/workflows?sort=name", "", nil, 400},
		{"GET /api/v1/workflows/{id}", wf, "", nil, 200},
		{"GET /api/v1/workflows/{id}", wf + "?version=1", "", nil, 200},
		{"GET /api/v1/workflows/{id}", wf + "?version=2", "", nil, 404},
		{"GET /api/v1/workflows/{id}", wf + "?version=0", "", nil, 400},
		{"GET /api/v1/workflows/{id}", wf + "?v=1", "", nil, 400},
		{"GET /api/v1/workflows/{id}", none, "", nil, 404},
		{"GET /api/v1/workflows/{id}/stats", wf + "/stats", "", nil, 200},
		{"GET /api/v1/workflows/{id}/stats", wf + "/stats?version=2", "", nil, 404},
		{"GET /api/v1/workflows/{id}/stats", wf + "/stats?version=latest", "", nil, 400},
		{"GET /api/v1/workflows/{id}/stats", none + "/stats", "", nil, 404},
		{"POST /api/v1/workflows/{id}/activate", none + "/activate", "", nil, 404},
		{"POST /api/v1/workflows/{id}/pause", none + "/pause", "", nil, 404},
		{"PUT /api/v1/workflows/{id}", none, journey("Nowhere", `{"id": "done", "type": "exit"}`), nil, 404},
		{"GET /api/v1/workflow-runs/{id}", "/api/v1/workflow-runs/no-such-run", "", nil, 404},
		{"GET /api/v1/workflow-runs", "/api/v1/workflow-runs?status=running", "", nil, 400},
		{"GET /api/v1/workflow-runs", "/api/v1/workflow-runs?limit=0", "", nil, 400},
		{"GET /api/v1/workflow-runs", "/api/v1/workflow-runs?cursor=nonsense", "", nil, 400},
		{"GET /api/v1/workflow-runs", "/api/v1/workflow-runs?workflow=x", "", nil, 400},
		{"POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "no spaces", "contactId": "` + contactID + `"}`, nil, 400},
		{"POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "openapi_probe", "contactId": "` + contactID + `", "properties": [1]}`, nil, 400},
		{"POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "openapi_probe"}`, nil, 400},
		{"POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "openapi_probe", "contact": "x"}`, nil, 400},
		{"POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "openapi_probe", "contactId": "no-such-contact"}`, nil, 404},
		{"POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "openapi_probe", "contactId": "x", "properties": {"note": "` + strings.Repeat("x", 70<<10) + `"}}`, nil, 413},
	})
	raw = wantCode("POST /api/v1/workflows", "/api/v1/workflows", `{"name": "Bad rule", "trigger": {"event": "contact.created"},
		"nodes": [{"id": "a", "type": "delay", "duration": "1h", "next": "x"}, {"id": "x", "type": "condition", "rule": {"all": [{"field": "email", "op": "sings"}]}}]}`,
		400, "invalid_workflow")
	if !strings.Contains(string(raw), `"path":"nodes[1] (\"x\").rule.all[0].op"`) {
		t.Errorf("an invalid rule's path: %s", raw)
	}
	wantCode("POST /api/v1/workflows", "/api/v1/workflows", journey("Welcome journey", `{"id": "done", "type": "exit"}`), 409, "workflow_name_taken")
	wantCode("POST /api/v1/workflows/{id}/pause", wf+"/pause", "", 409, "illegal_transition")
	wantCode("POST /api/v1/workflows/{id}/activate", drafty+"/activate", "", 409, "template_inactive")
	wantCode("POST /api/v1/workflows/{id}/activate", orphan+"/activate", "", 409, "template_gone")
	wantCode("GET /api/v1/workflows", "/api/v1/workflows?status=draft", "", 400, "invalid_status")
	wantCode("GET /api/v1/workflows/{id}", wf+"?version=2", "", 404, "version_not_found")
	wantCode("GET /api/v1/workflows/{id}", none, "", 404, "workflow_not_found")
	wantCode("GET /api/v1/workflow-runs/{id}", "/api/v1/workflow-runs/no-such-run", "", 404, "run_not_found")
	wantCode("POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "x", "contactId": "no-such-contact"}`, 404, "contact_not_found")

	// Active: runs start on custom events, one waits and one completes.
	do("POST /api/v1/workflows/{id}/activate", wf+"/activate", "", 200, "Idempotency-Key", "activate-"+id)
	do("POST /api/v1/workflows/{id}/activate", quick+"/activate", "", 200)
	wantCode("POST /api/v1/workflows/{id}/activate", wf+"/activate", "", 409, "illegal_transition")
	do("POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "openapi_probe", "contactId": "`+contactID+`", "properties": {"amount": 50, "fund": "library"}}`, 202)
	do("POST /api/v1/workflow-events", "/api/v1/workflow-events", `{"name": "openapi_quick", "contactId": "`+contactID+`"}`, 202)
	runs := map[string]string{} // workflow path -> its run's path
	for _, w := range []struct{ path, status string }{{wf, "waiting"}, {quick, "completed"}} {
		bustest.Eventually(t, 30*time.Second, w.path+" has a run "+w.status, func() bool {
			status, h, raw := call(t, "GET", base+"/api/v1/workflow-runs?status="+w.status+"&workflowId="+strings.TrimPrefix(w.path, "/api/v1/workflows/"), key, "")
			check(t, "GET /api/v1/workflow-runs", status, h, raw)
			var page struct{ Data []struct{ ID string } }
			if status != http.StatusOK || json.Unmarshal(raw, &page) != nil || len(page.Data) == 0 {
				return false
			}
			runs[w.path] = "/api/v1/workflow-runs/" + page.Data[0].ID
			return true
		})
	}
	for _, r := range runs {
		raw := do("GET /api/v1/workflow-runs/{id}", r, "", 200)
		if !strings.Contains(string(raw), `"path":[`) {
			t.Errorf("GET %s has no path: %s", r, raw)
		}
	}
	// A new version while a run waits on version 1.
	do("PUT /api/v1/workflows/{id}", wf, journey("Welcome journey", `{"id": "done", "type": "update_contact", "addTags": ["welcome-done"]}`), 200, "If-Match", `"1"`)
	wantCode("PUT /api/v1/workflows/{id}", wf, journey("Stale", `{"id": "done", "type": "exit"}`), 409, "version_mismatch", "If-Match", "1")
	wantCode("PUT /api/v1/workflows/{id}", wf, journey("Stale", `{"id": "done", "type": "exit"}`), 400, "invalid_if_match", "If-Match", `W/"2"`)
	wantCode("PUT /api/v1/workflows/{id}", wf, journey("Quick journey", `{"id": "done", "type": "exit"}`), 409, "workflow_name_taken")
	wantCode("PUT /api/v1/workflows/{id}", wf, journey("Welcome journey", `{"id": "done", "type": "exit", "next": "welcome"}`), 400, "invalid_workflow")
	runProbes(t, check, base, key, []probe{
		{"PUT /api/v1/workflows/{id}", wf, `{"name": "` + strings.Repeat("x", 300<<10) + `"}`, nil, 413},
		{"GET /api/v1/workflows/{id}", wf + "?version=1", "", nil, 200},
		{"GET /api/v1/workflows/{id}", wf + "?version=2", "", nil, 200},
		{"GET /api/v1/workflows/{id}/stats", wf + "/stats", "", nil, 200},
		{"GET /api/v1/workflows/{id}/stats", wf + "/stats?version=1", "", nil, 200},
		{"GET /api/v1/workflows/{id}/stats", quick + "/stats", "", nil, 200},
		{"GET /api/v1/workflow-runs", "/api/v1/workflow-runs?limit=1", "", nil, 200},
		{"GET /api/v1/workflow-runs", "/api/v1/workflow-runs?contactId=" + contactID + "&status=completed", "", nil, 200},
		{"GET /api/v1/workflow-runs", "/api/v1/workflow-runs?workflowId=no-such-workflow", "", nil, 200},
		{"GET /api/v1/workflows", "/api/v1/workflows?status=active", "", nil, 200},
		{"POST /api/v1/workflows/{id}/pause", wf + "/pause", "", nil, 200},
		{"POST /api/v1/workflows/{id}/pause", wf + "/pause", "", nil, 409},
		{"POST /api/v1/workflows/{id}/activate", wf + "/activate", "", nil, 200},
		{"GET /api/v1/workflows/{id}", wf, "", nil, 200},
	})
	// The second page of runs, by the first page's cursor.
	var page struct{ NextCursor string }
	if err := json.Unmarshal(do("GET /api/v1/workflow-runs", "/api/v1/workflow-runs?limit=1", "", 200), &page); err != nil || page.NextCursor == "" {
		t.Fatalf("two runs, one a page: no nextCursor (%v)", err)
	}
	do("GET /api/v1/workflow-runs", "/api/v1/workflow-runs?limit=1&cursor="+page.NextCursor, "", 200)
	if err := json.Unmarshal(do("GET /api/v1/workflows", "/api/v1/workflows?limit=1", "", 200), &page); err != nil || page.NextCursor == "" {
		t.Fatalf("several workflows, one a page: no nextCursor (%v)", err)
	}
	do("GET /api/v1/workflows", "/api/v1/workflows?limit=1&cursor="+page.NextCursor, "", 200)
}
