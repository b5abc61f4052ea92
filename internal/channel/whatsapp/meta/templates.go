package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// Message templates: a business-initiated message (outside the 24-hour
// customer service window) must quote a template Meta has approved.
// CreateTemplate submits one for Meta's review under the WhatsApp Business
// Account (Config.BusinessAccountID); the verdict arrives later as a
// message_template_status_update webhook (TemplateStatusUpdate), unless
// Meta decides at once.

// Meta's review statuses of a message template (TemplateStatus.Status).
const (
	TemplatePending  = "PENDING"
	TemplateApproved = "APPROVED"
	TemplateRejected = "REJECTED"
)

const (
	// MaxTemplateBody is Meta's limit on a template's body text.
	MaxTemplateBody = 1024
	// subcodeTemplateExists is Meta's error_subcode, with code 100, for a
	// create whose name already has content in the language ("Content in
	// this language already exists").
	subcodeTemplateExists = 2388024
)

var (
	templateNamePattern     = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	templateLanguagePattern = regexp.MustCompile(`^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,4})?$`)
	templateParamPattern    = regexp.MustCompile(`\{\{\s*(\d+)\s*\}\}`)
	templateCategories      = []string{"MARKETING", "UTILITY", "AUTHENTICATION"}
)

// MessageTemplate is a message template to submit for Meta's review: for
// now a body, which is what AlumOutreach's templates hold.
type MessageTemplate struct {
	// Name is lower-case letters, digits and _; with Language it
	// identifies the template in the business account.
	Name string
	// Language is Meta's language and locale code, "en_US" or "en".
	Language string
	// Category is MARKETING, UTILITY or AUTHENTICATION.
	Category string
	// Body is the text, with positional parameters {{1}}, {{2}}, ...
	Body string
	// BodyExamples are sample values of {{1}}, {{2}}, ... in order, which
	// Meta's reviewers read; one per parameter, none empty.
	BodyExamples []string
}

// TemplateStatus is Meta's record of a message template.
type TemplateStatus struct {
	// ID is Meta's template ID, which status webhooks carry
	// (message_template_id); empty when Meta did not tell it.
	ID       string
	Name     string
	Language string
	// Status is Meta's review status: PENDING, APPROVED, REJECTED, or
	// another of Meta's (PAUSED, DISABLED, IN_APPEAL, ...); empty when
	// unknown.
	Status   string
	Category string
	// Reason is Meta's rejected_reason (INVALID_FORMAT, PROMOTIONAL, ...)
	// when it gave one other than NONE.
	Reason string
	// Existing is true when CreateTemplate found the template there
	// already rather than creating it.
	Existing bool
}

// The request body of POST /{version}/{waba-id}/message_templates.
type createTemplateRequest struct {
	Name       string              `json:"name"`
	Language   string              `json:"language"`
	Category   string              `json:"category"`
	Components []templateComponent `json:"components"`
}

type templateComponent struct {
	Type    string           `json:"type"`
	Text    string           `json:"text,omitempty"`
	Example *templateExample `json:"example,omitempty"`
}

type templateExample struct {
	// BodyText holds one set of sample values, in parameter order.
	BodyText [][]string `json:"body_text,omitempty"`
}

// CreateTemplate submits t for Meta's review: a POST to
// {BaseURL}/{version}/{business-account-id}/message_templates with a BODY
// component (and its examples when it has parameters). Meta answers with
// the template's ID and status, usually PENDING: the verdict then arrives
// as a message_template_status_update webhook.
//
// A template of the same name and language that exists already (Meta's
// error 100, subcode 2388024) is not an error: it is our own earlier
// submission whose answer was lost, or one made in WhatsApp Manager. Meta
// does not make a second one; CreateTemplate looks it up (FindTemplate)
// and returns it with Existing set (and no ID or status if the lookup
// finds nothing). So retrying a submission never creates two templates,
// and a network failure after the request was sent is safe to retry.
//
// Errors are *channel.Error, classed as Send's are: Permanent when Meta
// refused the template itself (invalid name, text, examples or category,
// a name still being deleted, any 4xx without a known code), transient
// for throttling, Meta's own failures and network failures, and
// ErrConfiguration (transient) for the token, its permissions, an unknown
// business account ID, or none configured. A template Meta would refuse
// for its shape (name, language, category, empty or over-long body,
// missing or empty examples) is refused before any request.
func (s *Sender) CreateTemplate(ctx context.Context, t MessageTemplate) (TemplateStatus, error) {
	if err := s.needAccount(); err != nil {
		return TemplateStatus{}, err
	}
	payload, err := templateRequest(t)
	if err != nil {
		return TemplateStatus{}, err
	}
	reqCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	header := s.header()
	header.Set("Content-Type", "application/json")
	ans, err := channel.Post(reqCtx, s.client, Provider, s.templatesURL(nil), bytes.NewReader(payload), header, maxResponseBytes)
	if err != nil {
		return TemplateStatus{}, err
	}
	if ans.StatusCode >= 200 && ans.StatusCode < 300 {
		return created(t, ans)
	}
	if code, subcode := errorCodes(ans.Body); code == 100 && subcode == subcodeTemplateExists {
		found, ok, err := s.FindTemplate(ctx, t.Name, t.Language)
		if err != nil {
			// The template exists; only reading its status failed, which a
			// retry can mend.
			var ce *channel.Error
			if errors.As(err, &ce) && ce.Permanent {
				c := *ce
				c.Permanent = false
				err = &c
			}
			return TemplateStatus{}, fmt.Errorf("template %s (%s) exists at Meta already; looking it up: %w", t.Name, t.Language, err)
		}
		if !ok {
			found = TemplateStatus{Name: t.Name, Language: t.Language, Category: t.Category}
		}
		found.Existing = true
		return found, nil
	}
	return TemplateStatus{}, refusal(ans.Response, ans.Body)
}

// created reads a 2xx answer {"id":"...","status":"PENDING","category":"MARKETING"}.
func created(t MessageTemplate, ans channel.Answer) (TemplateStatus, error) {
	var out struct {
		ID       flexString `json:"id"`
		Status   string     `json:"status"`
		Category string     `json:"category"`
	}
	err := ans.ReadErr
	if err == nil {
		err = json.Unmarshal(ans.Body, &out)
	}
	if err == nil && out.ID == "" {
		err = errors.New("no template id in the response")
	}
	if err != nil {
		// Unlike a message, a template can be submitted again: the retry
		// finds the one Meta made (subcode 2388024).
		return TemplateStatus{}, &channel.Error{Provider: Provider, Err: err,
			Message: fmt.Sprintf("Meta answered HTTP %d to the template but its answer could not be read; a retry finds the template", ans.StatusCode)}
	}
	category := out.Category
	if category == "" {
		category = t.Category
	}
	return TemplateStatus{ID: string(out.ID), Name: t.Name, Language: t.Language, Status: strings.ToUpper(out.Status), Category: category}, nil
}

// FindTemplate looks up the business account's template of name in
// language: GET {BaseURL}/{version}/{business-account-id}/message_templates
// filtered by name. ok is false when there is none. Errors are classed as
// CreateTemplate's.
func (s *Sender) FindTemplate(ctx context.Context, name, language string) (TemplateStatus, bool, error) {
	if err := s.needAccount(); err != nil {
		return TemplateStatus{}, false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	q := url.Values{"name": {name}, "fields": {"id,name,language,status,category,rejected_reason"}, "limit": {"100"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.templatesURL(q), nil)
	if err != nil {
		return TemplateStatus{}, false, &channel.Error{Provider: Provider, Message: "building the request", Err: err}
	}
	req.Header = s.header()
	resp, err := channel.Do(s.client, req)
	if err != nil {
		return TemplateStatus{}, false, &channel.Error{Provider: Provider, Message: "request failed", Err: err}
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return TemplateStatus{}, false, refusal(resp, body)
	}
	var out struct {
		Data []struct {
			ID             flexString `json:"id"`
			Name           string     `json:"name"`
			Language       string     `json:"language"`
			Status         string     `json:"status"`
			Category       string     `json:"category"`
			RejectedReason string     `json:"rejected_reason"`
		} `json:"data"`
	}
	if readErr == nil {
		readErr = json.Unmarshal(body, &out)
	}
	if readErr != nil {
		return TemplateStatus{}, false, &channel.Error{Provider: Provider, Err: readErr,
			Message: fmt.Sprintf("Meta's list of templates (HTTP %d) could not be read", resp.StatusCode)}
	}
	for _, d := range out.Data {
		if d.Name != name || d.Language != language {
			continue // the name filter also matches longer names
		}
		st := TemplateStatus{ID: string(d.ID), Name: d.Name, Language: d.Language, Status: strings.ToUpper(d.Status), Category: d.Category}
		if r := strings.TrimSpace(d.RejectedReason); r != "" && !strings.EqualFold(r, "NONE") {
			st.Reason = r
		}
		return st, true, nil
	}
	return TemplateStatus{}, false, nil
}

// needAccount refuses template calls without a business account ID: the
// setting's failure, which no retry mends until it is set.
func (s *Sender) needAccount() error {
	if s.cfg.BusinessAccountID == "" {
		return &channel.Error{Provider: Provider, Err: ErrConfiguration,
			Message: "no WhatsApp Business Account ID is configured (Config.BusinessAccountID); message templates are created under it"}
	}
	return nil
}

func (s *Sender) templatesURL(q url.Values) string {
	u := s.base + "/" + s.cfg.APIVersion + "/" + url.PathEscape(s.cfg.BusinessAccountID) + "/message_templates"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func (s *Sender) header() http.Header {
	return http.Header{"Authorization": {"Bearer " + s.cfg.AccessToken}, "Accept": {"application/json"}}
}

// templateRequest builds the create request, refusing what Meta would.
func templateRequest(t MessageTemplate) ([]byte, error) {
	refuse := func(format string, args ...any) error {
		return &channel.Error{Provider: Provider, Message: fmt.Sprintf(format, args...), Permanent: true}
	}
	switch {
	case !templateNamePattern.MatchString(t.Name):
		return nil, refuse("template name %q is not lower-case letters, digits and _ (at most 512)", t.Name)
	case !templateLanguagePattern.MatchString(t.Language):
		return nil, refuse("template %s: language %q is not a code such as en or en_US", t.Name, t.Language)
	case !slices.Contains(templateCategories, t.Category):
		return nil, refuse("template %s: category %q is not MARKETING, UTILITY or AUTHENTICATION", t.Name, t.Category)
	case strings.TrimSpace(t.Body) == "":
		return nil, refuse("template %s has no body text", t.Name)
	}
	if n := utf8.RuneCountInString(t.Body); n > MaxTemplateBody {
		return nil, refuse("template %s: the body has %d characters, more than Meta's limit of %d", t.Name, n, MaxTemplateBody)
	}
	params := 0
	for _, m := range templateParamPattern.FindAllStringSubmatch(t.Body, -1) {
		n, _ := strconv.Atoi(m[1])
		params = max(params, n)
	}
	if len(t.BodyExamples) != params {
		return nil, refuse("template %s: the body uses {{1}} to {{%d}}; give %d examples (got %d)", t.Name, params, params, len(t.BodyExamples))
	}
	body := templateComponent{Type: "BODY", Text: t.Body}
	if params > 0 {
		for i, e := range t.BodyExamples {
			if strings.TrimSpace(e) == "" {
				return nil, refuse("template %s: the example of {{%d}} is empty, which Meta refuses", t.Name, i+1)
			}
		}
		body.Example = &templateExample{BodyText: [][]string{t.BodyExamples}}
	}
	r := createTemplateRequest{Name: t.Name, Language: t.Language, Category: t.Category, Components: []templateComponent{body}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, refuse("encoding the template: %v", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// errorCodes reads code and error_subcode out of a Graph API error body.
func errorCodes(body []byte) (code, subcode int) {
	var api apiError
	if json.Unmarshal(body, &api) != nil || api.Error == nil || api.Error.Code == nil {
		return 0, 0
	}
	return *api.Error.Code, api.Error.ErrorSubcode
}
