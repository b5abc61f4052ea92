package meta

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseWebhook(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "null", "{}", "[]", `{"object":"whatsapp_business_account"}`,
		`{"object":"whatsapp_business_account","entry":[{"id":1,"time":"x","changes":[{"field":"messages","value":{"messages":[{}],"statuses":[{}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"w","status":"failed","timestamp":1,"errors":[{"code":null}]}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"message_template_status_update","value":{"event":"X","message_template_id":1e999}}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ns, err := ParseWebhook(body)
		if err != nil {
			if !errors.Is(err, ErrInvalidWebhook) || ns != nil {
				t.Fatalf("error %v (notifications %v) is not a clean ErrInvalidWebhook", err, ns)
			}
			return
		}
		for i, n := range ns {
			if n == nil || n.Origin().BusinessAccountID == "" {
				t.Fatalf("notification %d is %#v", i, n)
			}
			switch v := n.(type) {
			case *InboundMessage:
				if v.ID == "" || v.Type == "" || (v.From == "" && v.FromUserID == "") || v.Timestamp.IsZero() {
					t.Fatalf("inbound message without its required fields: %+v", v)
				}
			case *StatusUpdate:
				if v.MessageID == "" || v.Status == "" || v.Timestamp.IsZero() {
					t.Fatalf("status without its required fields: %+v", v)
				}
			case *TemplateStatusUpdate:
				if v.Event == "" || (v.TemplateID == "" && v.TemplateName == "") {
					t.Fatalf("template update without its required fields: %+v", v)
				}
			case *ErrorNotification:
				if len(v.Errors) == 0 {
					t.Fatal("error notification without errors")
				}
			case *OtherChange:
				if v.Field == "" {
					t.Fatal("other change without a field")
				}
			default:
				t.Fatalf("unexpected notification type %T", n)
			}
		}
	})
}
