package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBatchesGrowUnderLoadAndErrorsReachTheirItem(t *testing.T) {
	var batches, largest atomic.Int32
	release := make(chan struct{})
	b := New(50, func(_ context.Context, items []int) []error {
		if batches.Add(1) == 1 {
			<-release // hold the first batch so the others queue behind it
		}
		largest.Store(max(largest.Load(), int32(len(items))))
		errs := make([]error, len(items))
		for i, v := range items {
			if v%10 == 0 {
				errs[i] = errors.New("multiple of ten")
			}
		}
		return errs
	})
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 1; i <= 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Do(context.Background(), i); err != nil {
				if i%10 != 0 {
					t.Errorf("item %d: %v", i, err)
				}
				failed.Add(1)
			} else if i%10 == 0 {
				t.Errorf("item %d succeeded", i)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	b.Stop()
	if failed.Load() != 20 || largest.Load() < 2 || largest.Load() > 50 {
		t.Fatalf("failed %d, largest batch %d, batches %d", failed.Load(), largest.Load(), batches.Load())
	}
	if err := b.Do(context.Background(), 1); !errors.Is(err, ErrStopped) {
		t.Fatalf("Do after Stop: %v", err)
	}
}
