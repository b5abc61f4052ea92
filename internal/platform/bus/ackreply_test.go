package bus

import "testing"

func TestParseAckReply(t *testing.T) {
	t.Parallel()
	cases := []struct {
		reply string
		want  delivery
		ok    bool
	}{
		{"$JS.ACK.ALUM_EVENTS.ANALYTICS_INGEST_CONSUMER.3.1234.1200.1769508000000000000.17", delivery{"ALUM_EVENTS", 3, 1234}, true},
		{"$JS.ACK.hub.ACCHASH.ALUM_EVENTS_DLQ.X_REPLAY.1.42.7.1769508000000000000.0.tok", delivery{"ALUM_EVENTS_DLQ", 1, 42}, true},
		{"$JS.ACK._.ACCHASH.S.C.2.9.9.1769508000000000000.0.tok.extra.more", delivery{"S", 2, 9}, true},
		{"$JS.ACK.S.C.x.1.1.1.0", delivery{}, false},   // delivered count not a number
		{"$JS.ACK.S.C.1.1.1.1", delivery{}, false},     // a token short
		{"$JS.ACK.S.C.1.1.1.1.0.0", delivery{}, false}, // neither layout
		{"_INBOX.abc.def", delivery{}, false},          // not a JetStream delivery
		{"", delivery{}, false},
	}
	for _, c := range cases {
		got, ok := parseAckReply(c.reply)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("parseAckReply(%q) = %+v, %v; want %+v, %v", c.reply, got, ok, c.want, c.ok)
		}
	}
}
