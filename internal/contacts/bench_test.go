package contacts

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/platform/outbox"
	"github.com/alumoutreach/alumoutreach/internal/platform/store"
	"github.com/alumoutreach/alumoutreach/internal/platform/store/storetest"
)

// writeCSV writes n alumni to a CSV file: address, names, two typed
// attributes, a tag and email consent, as a CRM export would have them.
func writeCSV(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "contacts.csv")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "email,firstName,lastName,tags,attributes.classYear,attributes.city,consent.email")
	cities := []string{"Boston", "Leeds", "Lagos", "Pune"}
	for i := range n {
		fmt.Fprintf(w, "person%d@example.org,First%d,Last%d,alumni,%d,%s,%s\n", i, i, i, 1960+i%66, cities[i%4], []string{"yes", "no"}[i%2])
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkImportCSV imports BENCH_CONTACTS (default 1,000,000) contacts
// from CSV in create mode: every contact stored with its tag and consent,
// and its events written to the outbox. It reports rows/s and the largest
// live heap seen while importing, which must not grow with the file.
func BenchmarkImportCSV(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_CONTACTS")); err == nil && v > 0 {
		n = v
	}
	path := writeCSV(b, n)
	for _, kind := range storetest.Kinds() {
		b.Run(string(kind), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				f := newBenchFixture(b, storetest.Open(b, kind))
				var peakHeap uint64
				var heapAt []uint64
				sample := func(p Import) {
					if p.Done%100_000 != 0 && p.Done != p.Total {
						return
					}
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					peakHeap = max(peakHeap, ms.HeapInuse)
					heapAt = append(heapAt, ms.HeapInuse>>20)
				}
				b.StartTimer()
				t0 := time.Now()
				imp, err := f.Run(context.Background(), "t", FormatCSV, ModeCreate, path, sample)
				took := time.Since(t0)
				if err != nil || imp.Created != int64(n) {
					b.Fatalf("import: %+v %v", imp, err)
				}
				b.ReportMetric(float64(n)/took.Seconds(), "rows/s")
				b.ReportMetric(float64(peakHeap>>20), "peak-heap-MiB")
				b.Logf("%d rows in %s; heap in use (MiB) every 100k rows: %v", n, took.Round(time.Millisecond), heapAt)
			}
		})
	}
}

func newBenchFixture(b *testing.B, db *store.DB) *Importer {
	b.Helper()
	migrate(b, db)
	log := slog.New(slog.DiscardHandler)
	return NewImporter(NewService(db, outbox.New(db, 0), log), ImportOptions{}, log)
}
