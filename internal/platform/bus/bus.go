package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream and subject names.
const (
	EventsStream     = "ALUM_EVENTS"
	DLQStream        = "ALUM_EVENTS_DLQ"
	TimersStream     = "ALUM_TIMERS"
	AdvisoriesStream = "ALUM_ADVISORIES"

	dlqPrefix    = "dlq."
	replayPrefix = "replay."
	timerPrefix  = "timer."
)

// Config says where the bus is and how its streams are kept.
type Config struct {
	// URL of an external NATS server or cluster (comma-separated seeds);
	// empty runs the embedded server.
	URL string
	// DataDir is where the embedded server keeps JetStream (DataDir/nats).
	DataDir string
	// ListenAddr is the embedded server's client listener (host:port), so
	// the nats CLI and our own subcommands reach it; empty listens nowhere.
	ListenAddr string
	// Replicas of every stream: 1 embedded, 3 in a cluster.
	Replicas int
	// MaxAge and MaxBytes bound ALUM_EVENTS; DLQMaxAge bounds the DLQ.
	MaxAge    time.Duration
	MaxBytes  int64
	DLQMaxAge time.Duration
	// DuplicateWindow is how long ALUM_EVENTS remembers a Nats-Msg-Id. The
	// other streams keep controlDuplicateWindow.
	DuplicateWindow time.Duration
	// SyncAlways makes the embedded server fsync every write; otherwise it
	// fsyncs every SyncInterval.
	SyncAlways   bool
	SyncInterval time.Duration
	// MaxEventSize is the largest encoded event accepted for publishing.
	MaxEventSize int
	// Name identifies this process's connection in server monitoring.
	Name string
}

func (c *Config) defaults() {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 10 << 30
	}
	if c.DLQMaxAge <= 0 {
		c.DLQMaxAge = 30 * 24 * time.Hour
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 30 * time.Second
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = time.Second
	}
	if c.Name == "" {
		c.Name = "alumoutreach"
	}
}

// Bus is a connection to JetStream, with the embedded server when there is one.
type Bus struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	srv     *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
}

// Open starts the embedded server (cfg.URL empty) or connects to cfg.URL,
// then creates or updates the streams.
func Open(ctx context.Context, cfg Config, metrics *Metrics, log *slog.Logger) (*Bus, error) {
	cfg.defaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	b := &Bus{cfg: cfg, log: log, metrics: metrics}
	var err error
	if cfg.URL == "" {
		b.srv, err = StartEmbedded(EmbeddedOptions{
			StoreDir:     filepath.Join(cfg.DataDir, "nats"),
			ListenAddr:   cfg.ListenAddr,
			SyncAlways:   cfg.SyncAlways,
			SyncInterval: cfg.SyncInterval,
		})
		if err != nil {
			return nil, err
		}
		b.nc, err = nats.Connect("", nats.InProcessServer(b.srv), nats.Name(cfg.Name), nats.MaxReconnects(-1))
	} else {
		b.nc, err = nats.Connect(cfg.URL, nats.Name(cfg.Name), nats.MaxReconnects(-1),
			nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(true),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil { // nil is our own Close
					log.Warn("disconnected from NATS", "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			}))
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("connect to NATS %s: %w", displayURL(cfg.URL), err)
	}
	b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(4000), jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := b.EnsureStreams(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func displayURL(u string) string {
	if u == "" {
		return "(embedded)"
	}
	return u
}

// JetStream exposes the JetStream context for the platform's own parts.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn exposes the NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Metrics returns the bus metrics.
func (b *Bus) Metrics() *Metrics { return b.metrics }

// Embedded returns the embedded server, or nil when connected to an external one.
func (b *Bus) Embedded() *server.Server { return b.srv }

// Ready reports whether the bus can take events now: the connection is up
// and JetStream answers.
func (b *Bus) Ready(ctx context.Context) error {
	if b.nc == nil || !b.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("jetstream not answering: %w", err)
	}
	return nil
}

// Close drains the connection and stops the embedded server.
func (b *Bus) Close() {
	if b.nc != nil {
		_ = b.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !b.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		b.nc.Close()
	}
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
}

// EmbeddedOptions configures StartEmbedded.
type EmbeddedOptions struct {
	StoreDir     string
	ListenAddr   string // host:port; empty: no listener (in-process only)
	SyncAlways   bool
	SyncInterval time.Duration
	ServerName   string
	// Cluster, when set, joins a cluster (tests and single-host labs).
	Cluster *ClusterOptions
}

// ClusterOptions makes the embedded server one node of a cluster.
type ClusterOptions struct {
	Name   string
	Listen string   // host:port for routes
	Routes []string // nats-route://host:port of the peers
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits until it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if err := os.MkdirAll(o.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("create NATS store directory %s: %w", o.StoreDir, err)
	}
	opts := &server.Options{
		ServerName:   o.ServerName,
		JetStream:    true,
		StoreDir:     o.StoreDir,
		SyncAlways:   o.SyncAlways,
		SyncInterval: o.SyncInterval,
		NoSigs:       true,
		NoLog:        true,
		MaxPayload:   8 << 20,
	}
	if o.ListenAddr == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitHostPort(o.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", o.ListenAddr, err)
		}
		opts.Host, opts.Port = host, port
	}
	if o.Cluster != nil {
		host, port, err := splitHostPort(o.Cluster.Listen)
		if err != nil {
			return nil, fmt.Errorf("cluster listen address %q: %w", o.Cluster.Listen, err)
		}
		opts.Cluster = server.ClusterOpts{Name: o.Cluster.Name, Host: host, Port: port}
		opts.Routes = server.RoutesFromStr(joinComma(o.Cluster.Routes))
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not become ready (store %s; is another alumoutreach using this data directory, or is %s taken?)", o.StoreDir, o.ListenAddr)
	}
	return srv, nil
}
