package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// BenchmarkContactCreateAPI creates contacts through the HTTP API of a
// running embedded instance (the relay, segments and analytics consumers
// working alongside), 32 requests in flight, and reports creates/s.
func BenchmarkContactCreateAPI(b *testing.B) {
	for _, kind := range storetest.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			a := startApp(b, testConfig(b, storetest.URL(b, kind)))
			_, key, err := a.Tenants().Create(context.Background(), "bench")
			if err != nil {
				b.Fatal(err)
			}
			url := "http://" + a.HTTPAddr() + "/api/v1/contacts"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var n atomic.Int64
			b.SetParallelism(16) // x GOMAXPROCS goroutines
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					body := fmt.Sprintf(`{"email": "p%d@example.org", "firstName": "P%d", "tags": ["alumni"], "attributes": {"classYear": %d}}`, i, i, 1960+i%66)
					req, _ := http.NewRequest("POST", url, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+key)
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 201 {
						b.Errorf("create: %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "creates/s")
		})
	}
}
