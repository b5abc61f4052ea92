package bus_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/alumoutreach/alumoutreach/internal/event"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus"
	"github.com/alumoutreach/alumoutreach/internal/platform/bus/bustest"
)

func TestEmbeddedRestartKeepsStreamsConsumersAndUnackedMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	first, err := bus.Open(ctx, bus.Config{DataDir: dir}, nil, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan string, 10)
	c, err := first.StartConsumer(ctx, bus.ConsumerOptions{Name: "DURABLE_CONSUMER", Concurrency: 1,
		Handler: func(ctx context.Context, ev event.Envelope) error { handled <- ev.ID; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	acked := bustest.ContactCreated(t, "t")
	publishTo(t, first, acked)
	if got := <-handled; got != acked.ID {
		t.Fatalf("handled %s", got)
	}
	_ = c.Stop(ctx)
	unacked := []event.Envelope{bustest.ContactCreated(t, "t"), bustest.ContactCreated(t, "t")}
	publishTo(t, first, unacked...) // published while nobody consumes: pending for the durable
	first.Close()

	second, err := bus.Open(ctx, bus.Config{DataDir: dir}, nil, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	s, err := second.JetStream().Stream(ctx, bus.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	si, _ := s.Info(ctx)
	if si.State.Msgs != 3 {
		t.Fatalf("stream kept %d messages, want 3", si.State.Msgs)
	}
	cons, err := second.JetStream().Consumer(ctx, bus.EventsStream, "DURABLE_CONSUMER")
	if err != nil {
		t.Fatalf("durable consumer lost across restart: %v", err)
	}
	ci, _ := cons.Info(ctx)
	if ci.NumPending != 2 {
		t.Fatalf("consumer has %d pending, want 2", ci.NumPending)
	}
	c2, err := second.StartConsumer(ctx, bus.ConsumerOptions{Name: "DURABLE_CONSUMER", Concurrency: 1,
		Handler: func(ctx context.Context, ev event.Envelope) error { handled <- ev.ID; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Stop(ctx)
	for _, want := range unacked {
		select {
		case got := <-handled:
			if got != want.ID {
				t.Fatalf("after restart got %s, want %s", got, want.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("unacked message not delivered after restart")
		}
	}
}

func publishTo(t *testing.T, b *bus.Bus, envs ...event.Envelope) {
	t.Helper()
	for _, e := range envs {
		if err := b.Publish(context.Background(), e); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func TestClusterOfThreeKeepsWorkingWithOneNodeDown(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("cluster test skipped in -short mode")
	}
	ports := freePorts(t, 6)
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
	}
	nodes := make([]*server.Server, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = bus.StartEmbedded(bus.EmbeddedOptions{
				ServerName: fmt.Sprintf("n%d", i+1), StoreDir: t.TempDir(),
				ListenAddr:   fmt.Sprintf("127.0.0.1:%d", ports[i]),
				SyncInterval: time.Second,
				Cluster:      &bus.ClusterOptions{Name: "alum-test", Listen: fmt.Sprintf("127.0.0.1:%d", ports[3+i]), Routes: routes},
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		t.Cleanup(nodes[i].Shutdown)
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", ports[0], ports[1], ports[2])
	ctx := context.Background()
	var b *bus.Bus
	bustest.Eventually(t, 30*time.Second, "cluster formed and R3 streams created", func() bool {
		var err error
		b, err = bus.Open(ctx, bus.Config{URL: url, Replicas: 3}, bus.NewMetrics(nil), bustest.Logger(t))
		return err == nil
	})
	t.Cleanup(b.Close)
	s, _ := b.JetStream().Stream(ctx, bus.EventsStream)
	si, _ := s.Info(ctx)
	if si.Config.Replicas != 3 {
		t.Fatalf("ALUM_EVENTS has %d replicas, want 3", si.Config.Replicas)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	c, err := b.StartConsumer(ctx, bus.ConsumerOptions{Name: "CLUSTER_CONSUMER", Concurrency: 8,
		Handler: func(ctx context.Context, ev event.Envelope) error {
			mu.Lock()
			seen[ev.ID]++
			mu.Unlock()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)

	var ids []string
	send := func(n int) {
		for range n {
			e := bustest.ContactCreated(t, "t")
			var err error
			deadline := time.Now().Add(20 * time.Second)
			for {
				if err = b.Publish(ctx, e); err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond) // a leader election in progress
			}
			if err != nil {
				t.Fatalf("publish with one node down: %v", err)
			}
			ids = append(ids, e.ID)
		}
	}
	send(50)
	// Stop the node that leads ALUM_EVENTS: the hardest one to lose.
	si, _ = s.Info(ctx)
	for _, n := range nodes {
		if n.Name() == si.Cluster.Leader {
			n.Shutdown()
		}
	}
	send(100)
	bustest.Eventually(t, 30*time.Second, "every event delivered with a node down", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	})
}
