package smtp

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/channel"
)

// benchMessage is a campaign email of about 5 KB rendered: an HTML body
// with a tracked link and an image, its text version, a non-ASCII
// subject and sender name, and the one-click unsubscribe headers.
func benchMessage(i int) channel.Message {
	id := "0197a3c2-7d4e-7b1a-9c3f-" + strconv.Itoa(100000000000+i)
	var html strings.Builder
	html.WriteString(`<!DOCTYPE html><html><body style="font-family:Arial,sans-serif;color:#222">`)
	html.WriteString(`<img src="https://cdn.example.org/img/header.png" alt="Alumni" width="600" height="120">`)
	html.WriteString(`<h1>Réunion des anciens 2026</h1>`)
	var text strings.Builder
	text.WriteString("Réunion des anciens 2026\n\n")
	for p := 0; p < 9; p++ {
		html.WriteString(`<p>Chère Ada, nous avons le plaisir de vous inviter à la réunion annuelle des anciens élèves, `)
		html.WriteString(`qui aura lieu le samedi 14 juin sur le campus. Au programme : visites, conférences et dîner.</p>`)
		text.WriteString("Chère Ada, nous avons le plaisir de vous inviter à la réunion annuelle des anciens élèves.\n")
	}
	html.WriteString(`<p><a href="https://t.example.org/c/` + id + `?u=https%3A%2F%2Fexample.org%2Freunion&amp;utm_source=email">Je m'inscris</a></p>`)
	html.WriteString(`<img src="https://t.example.org/o/` + id + `.gif" width="1" height="1" alt="">`)
	html.WriteString(`</body></html>`)
	text.WriteString("\nInscription : https://t.example.org/c/" + id + "\n")
	return channel.Message{
		ID:       id,
		To:       "ada.lovelace" + strconv.Itoa(i) + "@example.net",
		From:     "alumni@example.org",
		FromName: "Bureau des anciens élèves",
		ReplyTo:  "replies@example.org",
		Subject:  "Réunion des anciens 2026 : inscrivez-vous",
		HTML:     html.String(),
		Text:     text.String(),
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://example.org/u/" + id + ">, <mailto:unsubscribe@example.org?subject=" + id + ">",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}

// BenchmarkSendLoopback measures messages per second through Send to a
// go-smtp server on loopback that discards what it gets, with PoolSize 8
// and 32 goroutines sending (the pipeline's shape). Both ends share the
// machine's cores, so this is a floor for the client's own throughput.
//
//	go test -run '^$' -bench SendLoopback -benchtime 20000x ./internal/channel/email/smtp/
func BenchmarkSendLoopback(b *testing.B) {
	for _, mode := range []string{"plain", "starttls"} {
		b.Run(mode, func(b *testing.B) {
			opts := serverOptions{discard: true}
			if mode == "starttls" {
				opts.tls = "starttls"
			}
			srv := startServer(b, opts)
			cfg := srv.config(b)
			cfg.PoolSize = 8
			s := newSender(b, cfg)

			const senders = 32
			msgs := make([]channel.Message, 256)
			for i := range msgs {
				msgs[i] = benchMessage(i)
			}
			built, _, err := BuildMessage(msgs[0], time.Now(), "")
			if err != nil {
				b.Fatal(err)
			}
			// Warm the pool so that the figure is the steady state.
			for i := range cfg.PoolSize {
				if _, err := s.Send(context.Background(), msgs[i]); err != nil {
					b.Fatal(err)
				}
			}

			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Value
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range senders {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if _, err := s.Send(context.Background(), msgs[i%int64(len(msgs))]); err != nil {
							failed.Store(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(len(built)), "bytes/msg")
			b.ReportMetric(float64(srv.accepted.Load()), "conns")
		})
	}
}

// BenchmarkBuildMessage is the rendering alone, into a reused buffer as
// Send does.
func BenchmarkBuildMessage(b *testing.B) {
	m := benchMessage(1)
	now := time.Now()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, _, _, err = appendMessage(buf[:0], m, now, "")
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
