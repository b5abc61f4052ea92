package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

var reunionTemplate = MessageTemplate{Name: "reunion_invite", Language: "en_US", Category: "MARKETING",
	Body: "Hi {{1}}, join us for the {{2}} — tickets & details inside!", BodyExamples: []string{"Ada", "Class of 2010 Reunion"}}

const templatesPath = "/" + DefaultAPIVersion + "/" + testBusinessID + "/message_templates"

// templateCreated answers as Meta does to a template it accepted for review.
func templateCreated(id, status string) http.HandlerFunc {
	return raw(200, "application/json; charset=UTF-8", fmt.Sprintf(`{"id":%q,"status":%q,"category":"MARKETING"}`, id, status))
}

// templateError answers with a Graph API error as the template endpoints
// send them: with error_user_title and error_user_msg.
func templateError(status, code, subcode int, message, userTitle, userMsg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e := map[string]any{"message": message, "type": "OAuthException", "code": code, "is_transient": false,
			"fbtrace_id": "AXtemplTrace1"}
		if subcode != 0 {
			e["error_subcode"] = subcode
		}
		if userTitle != "" {
			e["error_user_title"], e["error_user_msg"] = userTitle, userMsg
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
	}
}

// duplicateTemplate is Meta's answer to a name that already has content
// in the language.
var duplicateTemplate = templateError(400, 100, 2388024, "Invalid parameter", "Content in This Language Already Exists",
	"There's already English (US) content for this template. You can create a new template and try again.")

// byMethod routes POSTs and GETs to their own answers.
func byMethod(post, get http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			get(w, r)
			return
		}
		post(w, r)
	}
}

func TestCreateTemplateRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tpl     MessageTemplate
		respond http.HandlerFunc
		payload map[string]any
		want    TemplateStatus
	}{
		{
			name:    "body with parameters and their examples",
			tpl:     reunionTemplate,
			respond: templateCreated("572279198452421", "PENDING"),
			payload: map[string]any{"name": "reunion_invite", "language": "en_US", "category": "MARKETING",
				"components": []any{map[string]any{"type": "BODY", "text": "Hi {{1}}, join us for the {{2}} — tickets & details inside!",
					"example": map[string]any{"body_text": []any{[]any{"Ada", "Class of 2010 Reunion"}}}}}},
			want: TemplateStatus{ID: "572279198452421", Name: "reunion_invite", Language: "en_US", Status: TemplatePending, Category: "MARKETING"},
		},
		{
			name:    "body without parameters, approved at once",
			tpl:     MessageTemplate{Name: "giving_day_thanks", Language: "en", Category: "UTILITY", Body: "Thank you for giving on Giving Day."},
			respond: raw(200, "application/json", `{"id":"880011","status":"APPROVED","category":"UTILITY"}`),
			payload: map[string]any{"name": "giving_day_thanks", "language": "en", "category": "UTILITY",
				"components": []any{map[string]any{"type": "BODY", "text": "Thank you for giving on Giving Day."}}},
			want: TemplateStatus{ID: "880011", Name: "giving_day_thanks", Language: "en", Status: TemplateApproved, Category: "UTILITY"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGraph(t, c.respond)
			got, err := newSender(t, f, nil).CreateTemplate(context.Background(), c.tpl)
			if err != nil {
				t.Fatalf("CreateTemplate: %v", err)
			}
			if got != c.want {
				t.Errorf("status = %+v, want %+v", got, c.want)
			}
			reqs := f.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			want := request{Method: http.MethodPost, Path: templatesPath, Authorization: "Bearer " + testToken, ContentType: "application/json", Body: c.payload}
			if !reflect.DeepEqual(reqs[0], want) {
				t.Errorf("request\n got %#v\nwant %#v", reqs[0], want)
			}
		})
	}
}

func TestCreateTemplateThatExists(t *testing.T) {
	t.Parallel()
	list := raw(200, "application/json", `{"data": [
		{"id": "111", "name": "reunion_invite_2027", "language": "en_US", "status": "PENDING", "category": "MARKETING"},
		{"id": "222", "name": "reunion_invite", "language": "es", "status": "REJECTED", "category": "MARKETING", "rejected_reason": "PROMOTIONAL"},
		{"id": "572279198452421", "name": "reunion_invite", "language": "en_US", "status": "APPROVED", "category": "MARKETING", "rejected_reason": "NONE"}],
		"paging": {"cursors": {"before": "MAZDZD", "after": "MjQZD"}}}`)
	cases := []struct {
		name      string
		get       http.HandlerFunc
		want      TemplateStatus
		transient bool
	}{
		{"found, approved", list, TemplateStatus{ID: "572279198452421", Name: "reunion_invite", Language: "en_US", Status: TemplateApproved, Category: "MARKETING", Existing: true}, false},
		{"not in the list", raw(200, "application/json", `{"data": []}`), TemplateStatus{Name: "reunion_invite", Language: "en_US", Category: "MARKETING", Existing: true}, false},
		{"lookup fails", raw(503, "text/plain", "unavailable"), TemplateStatus{}, true},
		{"lookup refused", templateError(400, 100, 0, "(#100) Tried accessing nonexisting field (rejected_reason)", "", ""), TemplateStatus{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGraph(t, byMethod(duplicateTemplate, c.get))
			got, err := newSender(t, f, nil).CreateTemplate(context.Background(), reunionTemplate)
			if c.transient {
				if err == nil || channel.IsPermanent(err) {
					t.Fatalf("CreateTemplate = %+v, %v; want a transient error", got, err)
				}
				if !strings.Contains(err.Error(), "exists at Meta already") {
					t.Errorf("error %q does not say the template exists", err)
				}
			} else if err != nil || got != c.want {
				t.Fatalf("CreateTemplate = %+v, %v; want %+v", got, err, c.want)
			}
			reqs := f.Requests()
			if len(reqs) != 2 || reqs[0].Method != http.MethodPost || reqs[1].Method != http.MethodGet {
				t.Fatalf("requests %+v, want the POST then one GET", reqs)
			}
			q, _ := url.ParseQuery(reqs[1].Query)
			if reqs[1].Path != templatesPath || reqs[1].Authorization != "Bearer "+testToken || q.Get("name") != "reunion_invite" ||
				!strings.Contains(q.Get("fields"), "status") || !strings.Contains(q.Get("fields"), "language") {
				t.Errorf("lookup request %+v", reqs[1])
			}
		})
	}
}

func TestFindTemplateReason(t *testing.T) {
	t.Parallel()
	f := newFakeGraph(t, raw(200, "application/json", `{"data": [{"id": 222, "name": "reunion_invite", "language": "es", "status": "REJECTED", "rejected_reason": "PROMOTIONAL"}]}`))
	got, ok, err := newSender(t, f, nil).FindTemplate(context.Background(), "reunion_invite", "es")
	if want := (TemplateStatus{ID: "222", Name: "reunion_invite", Language: "es", Status: TemplateRejected, Reason: "PROMOTIONAL"}); err != nil || !ok || got != want {
		t.Fatalf("FindTemplate = %+v, %v, %v; want %+v", got, ok, err, want)
	}
}

func TestCreateTemplateFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		respond   http.HandlerFunc
		permanent bool
		config    bool
		code      string
		message   string
	}{
		{"variable at the end", templateError(400, 100, 2388299, "Invalid parameter", "Variables can't be at the start or end of the template",
			"Variables can't be at the start or end of the template."), true, false, "100", "Variables can't be at the start or end"},
		{"name being deleted", templateError(400, 100, 2388023, "Invalid parameter", "Message Template Language Is Being Deleted",
			"New English (US) content can't be added while the existing English (US) content is being deleted. Try again in 4 weeks or consider creating a new message template."),
			true, false, "100", "being deleted"},
		{"plain 400", raw(400, "application/json", `{"error":{"message":"Bad request"}}`), true, false, "", "Bad request (HTTP 400)"},
		{"server error", templateError(500, 1, 0, "An unknown error occurred", "", ""), false, false, "1", "unknown error"},
		{"service unavailable", raw(503, "text/html", "<html>Service Unavailable</html>"), false, false, "", "HTTP 503"},
		{"rate limited", templateError(429, 4, 0, "(#4) Application request limit reached", "", ""), false, false, "4", "request limit"},
		{"expired token", templateError(401, 190, 463, "Error validating access token: Session has expired", "", ""), false, true, "190", "Session has expired"},
		{"no management permission", templateError(403, 200, 0, "(#200) Requires whatsapp_business_management permission", "", ""), false, true, "200", "whatsapp_business_management"},
		{"unknown business account", templateError(400, 100, 33, "Unsupported post request. Object with ID '102290129340398' does not exist", "", ""), false, true, "100", "does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGraph(t, c.respond)
			_, err := newSender(t, f, nil).CreateTemplate(context.Background(), reunionTemplate)
			ce := asChannelError(t, err)
			if ce.Provider != "meta" || ce.Code != c.code || ce.Permanent != c.permanent {
				t.Errorf("error = %+v; want code %q permanent %v", ce, c.code, c.permanent)
			}
			if got := errors.Is(err, ErrConfiguration); got != c.config {
				t.Errorf("errors.Is(err, ErrConfiguration) = %v, want %v", got, c.config)
			}
			if !strings.Contains(ce.Message, c.message) {
				t.Errorf("message %q does not contain %q", ce.Message, c.message)
			}
			if n := len(f.Requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no lookup)", n)
			}
		})
	}

	t.Run("2xx without an id is retried", func(t *testing.T) {
		t.Parallel()
		f := newFakeGraph(t, raw(200, "application/json", `{"success": true}`))
		_, err := newSender(t, f, nil).CreateTemplate(context.Background(), reunionTemplate)
		if ce := asChannelError(t, err); ce.Permanent || !strings.Contains(ce.Message, "a retry finds the template") {
			t.Errorf("error = %v; want a transient one", err)
		}
	})
}

func TestCreateTemplateRefusesBeforeSending(t *testing.T) {
	t.Parallel()
	with := func(change func(*MessageTemplate)) MessageTemplate {
		t := reunionTemplate
		t.BodyExamples = append([]string(nil), t.BodyExamples...)
		change(&t)
		return t
	}
	cases := []struct {
		name   string
		tpl    MessageTemplate
		noWABA bool
		want   string
	}{
		{"name with capitals", with(func(t *MessageTemplate) { t.Name = "Reunion Invite" }), false, "lower-case"},
		{"no language", with(func(t *MessageTemplate) { t.Language = "" }), false, "language"},
		{"unknown category", with(func(t *MessageTemplate) { t.Category = "PROMOTION" }), false, "category"},
		{"empty body", with(func(t *MessageTemplate) { t.Body = " " }), false, "no body"},
		{"body too long", with(func(t *MessageTemplate) { t.Body = strings.Repeat("é", MaxTemplateBody+1) }), false, "1025 characters"},
		{"examples missing", with(func(t *MessageTemplate) { t.BodyExamples = t.BodyExamples[:1] }), false, "give 2 examples (got 1)"},
		{"empty example", with(func(t *MessageTemplate) { t.BodyExamples[1] = "" }), false, "{{2}} is empty"},
		{"no business account", reunionTemplate, true, "no WhatsApp Business Account ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeGraph(t, nil)
			s := newSender(t, f, func(cfg *Config) {
				if c.noWABA {
					cfg.BusinessAccountID = ""
				}
			})
			_, err := s.CreateTemplate(context.Background(), c.tpl)
			ce := asChannelError(t, err)
			if ce.Permanent == c.noWABA || errors.Is(err, ErrConfiguration) != c.noWABA || !strings.Contains(ce.Message, c.want) {
				t.Errorf("error = %v; want one saying %q, permanent %v", err, c.want, !c.noWABA)
			}
			if n := len(f.Requests()); n != 0 {
				t.Errorf("%d requests reached Meta, want none", n)
			}
		})
	}
}
