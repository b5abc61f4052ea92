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

// A gathering batcher commits a lone item at once, and every item of a
// burst exactly once within its batch limit.
func TestGatherCommitsEveryItemOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	var oversized atomic.Bool
	b := New(64, func(_ context.Context, items []int) []error {
		if len(items) > 64 {
			oversized.Store(true)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, v := range items {
			seen[v]++
		}
		return nil
	}).WithGather()
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	done := make(chan error, 1)
	go func() { done <- b.Do(context.Background(), 0) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a lone item waited for company")
	}
	var wg sync.WaitGroup
	for i := 1; i <= 1000; i++ {
		wg.Go(func() {
			if err := b.Do(context.Background(), i); err != nil {
				t.Errorf("item %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i <= 1000; i++ {
		if seen[i] != 1 {
			t.Fatalf("item %d committed %d times", i, seen[i])
		}
	}
	if oversized.Load() {
		t.Error("a batch exceeded its limit")
	}
}
