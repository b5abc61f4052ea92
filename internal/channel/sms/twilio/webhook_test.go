package twilio

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readForm reads a webhook body kept in testdata.
func readForm(t *testing.T, name string) url.Values {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return form
}

func TestParseStatusCallback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file string
		want StatusCallback
	}{
		{"status_sent.form", StatusCallback{
			MessageSid: testMessageSID, AccountSid: testAccountSID, MessageStatus: StatusSent,
			From: testFrom, To: "+15558675310",
		}},
		{"status_delivered.form", StatusCallback{
			MessageSid: testMessageSID, AccountSid: testAccountSID, MessagingServiceSid: testServiceSID,
			MessageStatus: StatusDelivered, From: testFrom, To: "+15558675310",
		}},
		{"status_undelivered.form", StatusCallback{
			MessageSid: testMessageSID, AccountSid: testAccountSID, MessageStatus: StatusUndelivered,
			ErrorCode: "30003", From: testFrom, To: "+15558675310",
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			got, err := ParseStatusCallback(readForm(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}

	t.Run("status helpers", func(t *testing.T) {
		t.Parallel()
		if !StatusUndelivered.Failed() || !StatusFailed.Failed() || StatusDelivered.Failed() {
			t.Error("Failed is wrong")
		}
		if !StatusRead.Known() || MessageStatus("teleported").Known() {
			t.Error("Known is wrong")
		}
	})
}

func TestParseStatusCallbackRefuses(t *testing.T) {
	t.Parallel()
	base := readForm(t, "status_delivered.form")
	cases := []struct {
		name   string
		change func(url.Values)
		want   string
	}{
		{"no MessageSid", func(f url.Values) { f.Del("MessageSid"); f.Del("SmsSid") }, "MessageSid is missing"},
		{"malformed MessageSid", func(f url.Values) { f.Set("MessageSid", "SM123'; drop table") }, "is not a Message SID"},
		{"lower-case prefix", func(f url.Values) { f.Set("MessageSid", "sm1f0e8ae6ade43cb3c0ce4525424e404f") }, "is not a Message SID"},
		{"no status", func(f url.Values) { f.Del("MessageStatus"); f.Del("SmsStatus") }, "MessageStatus is missing"},
		{"garbage status", func(f url.Values) { f.Set("MessageStatus", "<b>delivered</b>") }, "is not a status"},
		{"garbage error code", func(f url.Values) { f.Set("ErrorCode", "30003abc") }, "is not a Twilio error code"},
		{"foreign AccountSid", func(f url.Values) { f.Set("AccountSid", "XX0123") }, "is not an Account SID"},
		{"malformed service", func(f url.Values) { f.Set("MessagingServiceSid", "MG1") }, "is not a Messaging Service SID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := clone(base)
			c.change(f)
			_, err := ParseStatusCallback(f)
			if !errors.Is(err, ErrInvalidWebhook) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v; want ErrInvalidWebhook saying %q", err, c.want)
			}
		})
	}

	t.Run("legacy names stand in", func(t *testing.T) {
		t.Parallel()
		f := clone(base)
		f.Del("MessageSid")
		f.Del("MessageStatus")
		got, err := ParseStatusCallback(f)
		if err != nil || got.MessageSid != testMessageSID || got.MessageStatus != StatusDelivered {
			t.Errorf("got %+v, %v", got, err)
		}
	})
	t.Run("unknown but well-formed status is kept", func(t *testing.T) {
		t.Parallel()
		f := clone(base)
		f.Set("MessageStatus", "partially_read")
		got, err := ParseStatusCallback(f)
		if err != nil || got.MessageStatus != "partially_read" || got.MessageStatus.Known() {
			t.Errorf("got %+v, %v", got, err)
		}
	})
	t.Run("empty form", func(t *testing.T) {
		t.Parallel()
		if _, err := ParseStatusCallback(nil); !errors.Is(err, ErrInvalidWebhook) {
			t.Errorf("error = %v", err)
		}
	})
}

func TestParseInbound(t *testing.T) {
	t.Parallel()
	const mms = "MMc781610ec0b3400c9e0cab8e757da937"
	mediaBase := "https://api.twilio.com/2010-04-01/Accounts/" + testAccountSID + "/Messages/" + mms + "/Media/"
	cases := []struct {
		file string
		want InboundMessage
	}{
		{"inbound_sms.form", InboundMessage{
			MessageSid: "SM3b4f1c2a9d8e7f6a5b4c3d2e1f0a9b8c", AccountSid: testAccountSID, MessagingServiceSid: testServiceSID,
			From: "+15558675310", To: testFrom, Body: "Count me in for the reunion!", NumSegments: 1,
		}},
		{"inbound_mms.form", InboundMessage{
			MessageSid: mms, AccountSid: testAccountSID, From: "+15558675310", To: testFrom,
			Body: "Class of 2016 photo", NumSegments: 1, NumMedia: 2,
			Media: []Media{
				{URL: mediaBase + "ME0aa1d3d2e1f0a9b8c7d6e5f4a3b2c1d0", ContentType: "image/jpeg"},
				{URL: mediaBase + "ME1bb1d3d2e1f0a9b8c7d6e5f4a3b2c1d0", ContentType: "application/pdf"},
			},
		}},
		{"inbound_stop.form", InboundMessage{
			MessageSid: "SM7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b", AccountSid: testAccountSID,
			From: "+12125550123", To: testFrom, Body: "STOP", NumSegments: 1, OptOutType: "STOP",
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			got, err := ParseInbound(readForm(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestParseInboundRefuses(t *testing.T) {
	t.Parallel()
	base := readForm(t, "inbound_mms.form")
	cases := []struct {
		name   string
		change func(url.Values)
		want   string
	}{
		{"no MessageSid", func(f url.Values) { f.Del("MessageSid"); f.Del("SmsMessageSid"); f.Del("SmsSid") }, "MessageSid is missing"},
		{"no From", func(f url.Values) { f.Del("From") }, "From is missing"},
		{"no To", func(f url.Values) { f.Del("To") }, "To is missing"},
		{"NumMedia not a number", func(f url.Values) { f.Set("NumMedia", "two") }, "NumMedia \"two\" is not a count"},
		{"NumMedia negative", func(f url.Values) { f.Set("NumMedia", "-1") }, "is not a count"},
		{"NumMedia too large", func(f url.Values) { f.Set("NumMedia", "11") }, "more than Twilio's 10"},
		{"media URL missing", func(f url.Values) { f.Del("MediaUrl1") }, "NumMedia is 2 but MediaUrl1 is missing"},
		{"media URL not http", func(f url.Values) { f.Set("MediaUrl0", "file:///etc/passwd") }, "MediaUrl0"},
		{"NumSegments garbage", func(f url.Values) { f.Set("NumSegments", "1e9") }, "NumSegments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := clone(base)
			c.change(f)
			_, err := ParseInbound(f)
			if !errors.Is(err, ErrInvalidWebhook) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v; want ErrInvalidWebhook saying %q", err, c.want)
			}
		})
	}
}

func clone(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = append([]string(nil), v...)
	}
	return out
}
