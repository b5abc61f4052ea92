package bus

import (
	"strconv"
	"strings"
)

// delivery is what the consumer needs of a message's JetStream metadata on
// every delivery. jetstream.Msg.Metadata parses the same reply subject into
// a freshly allocated struct of ten fields, with a time conversion: a
// microsecond per event at the rates the consumers run.
type delivery struct {
	stream    string
	attempt   uint64 // deliveries so far, this one included
	streamSeq uint64
}

// parseAckReply reads a JetStream delivery's reply subject, in either of the
// server's two layouts:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>
//	$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>.<token>...
func parseAckReply(reply string) (delivery, bool) {
	rest, ok := strings.CutPrefix(reply, "$JS.ACK.")
	if !ok {
		return delivery{}, false
	}
	var tokens [12]string
	n := 0
	for n < len(tokens) {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tokens[n] = rest
			n++
			break
		}
		tokens[n], rest = rest[:i], rest[i+1:]
		n++
	}
	// Counted after "$JS.ACK.": 7 tokens in the first layout, 10 or more
	// in the second.
	var stream, delivered, seq string
	switch {
	case n == 7:
		stream, delivered, seq = tokens[0], tokens[2], tokens[3]
	case n >= 10:
		stream, delivered, seq = tokens[2], tokens[4], tokens[5]
	default:
		return delivery{}, false
	}
	d := delivery{stream: stream}
	var err1, err2 error
	d.attempt, err1 = strconv.ParseUint(delivered, 10, 64)
	d.streamSeq, err2 = strconv.ParseUint(seq, 10, 64)
	return d, stream != "" && err1 == nil && err2 == nil
}
