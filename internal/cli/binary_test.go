package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestBinaryServeLifecycle runs the real binary the way an operator does:
// serve in one process, the other subcommands in others against the same
// data directory (SQLite shared between processes, the bus reached through
// the embedded server's loopback listener), then a clean stop on SIGTERM,
// and a crash (SIGKILL) followed by a restart that notices it.
func TestBinaryServeLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	natsAddr := freeAddr(t)
	// The subcommands' environment: the listener of the serve under test,
	// never the default 127.0.0.1:4222.
	toolEnv := []string{"ALUM_NATS_LISTEN_ADDR=" + natsAddr}

	srv := startServe(t, bin, dir, natsAddr)
	if started := srv.waitStarted(t); started["uncleanRestart"] != false {
		t.Errorf("first start on a new data dir: uncleanRestart = %v, want false", started["uncleanRestart"])
	}
	if _, err := os.Stat(filepath.Join(dir, "RUNNING")); err != nil {
		t.Fatalf("serve runs without its RUNNING marker: %v", err)
	}

	out := runBinary(t, bin, toolEnv, "tenant", "create", "Binary Alumni", "--data-dir", dir)
	key := match(t, apiKeyRe, out)[1]
	if status, body := srv.get(t, "/api/v1/analytics/events/counts?interval=day", key); status != http.StatusOK || !strings.Contains(body, `"total":0`) {
		t.Fatalf("counts with the key tenant create printed: %d %s", status, body)
	}
	if status, _ := srv.get(t, "/api/v1/analytics/events/counts", ""); status != http.StatusUnauthorized {
		t.Fatalf("counts without a key: %d, want 401", status)
	}
	if status, body := srv.get(t, "/api/v1/openapi.json", ""); status != http.StatusOK || !json.Valid([]byte(body)) {
		t.Fatalf("the binary serves no OpenAPI document: %d %.200s", status, body)
	}

	// Something to dead-letter, sent the way any NATS client could: bytes
	// that are no event, which the analytics consumer refuses at once.
	publishRaw(t, natsAddr, "contact.created", []byte("not an event"))
	var listed struct {
		Items []struct {
			Seq      uint64 `json:"seq"`
			Consumer string `json:"consumer"`
			Subject  string `json:"subject"`
			Error    struct {
				Code string `json:"code"`
			} `json:"error"`
		} `json:"items"`
	}
	// Every consumer of contact.> refuses it: analytics and segments each
	// get a dead letter of their own.
	analyticsEntry := func() bool {
		for _, d := range listed.Items {
			if d.Consumer == "ANALYTICS_INGEST_CONSUMER" {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(15 * time.Second)
	for !analyticsEntry() {
		if time.Now().After(deadline) {
			t.Fatalf("the refused event never showed in 'dlq list'; serve log:\n%s", srv.logs)
		}
		time.Sleep(100 * time.Millisecond)
		out = runBinary(t, bin, toolEnv, "dlq", "list", "--json", "--data-dir", dir)
		if err := json.Unmarshal([]byte(out), &listed); err != nil {
			t.Fatalf("dlq list --json is not JSON: %v\n%s", err, out)
		}
	}
	for _, d := range listed.Items {
		if d.Subject != "contact.created" || d.Error.Code != "INVALID_EVENT" {
			t.Fatalf("dlq list = %+v, want only the refused event, once per consumer", listed.Items)
		}
	}
	out = runBinary(t, bin, toolEnv, "dlq", "list", "--data-dir", dir)
	wantContains(t, "dlq list", out, "SEQ", "CONSUMER", "ANALYTICS_INGEST_CONSUMER", "contact.created", "INVALID_EVENT")
	// The entry lives only in the running server's store: from another
	// data directory it is visible only through the listener, and that
	// directory gets no NATS store of its own.
	other := t.TempDir()
	out = runBinary(t, bin, toolEnv, "dlq", "list", "--data-dir", other)
	wantContains(t, "dlq list from another data dir", out, "ANALYTICS_INGEST_CONSUMER")
	if _, err := os.Stat(filepath.Join(other, "nats")); !os.IsNotExist(err) {
		t.Errorf("dlq list opened an embedded server (%v) although serve listens on %s", err, natsAddr)
	}

	// SIGTERM: a clean stop within the shutdown timeout.
	if code := srv.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0; log:\n%s", code, srv.logs)
	}
	if srv.entry("alumoutreach stopped cleanly") == nil {
		t.Errorf("the log does not say it stopped cleanly:\n%s", srv.logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "RUNNING")); !os.IsNotExist(err) {
		t.Errorf("a clean stop left the RUNNING marker: %v", err)
	}

	// After a clean stop the next start is a clean one; then a crash.
	srv = startServe(t, bin, dir, natsAddr)
	if started := srv.waitStarted(t); started["uncleanRestart"] != false {
		t.Errorf("start after a clean stop: uncleanRestart = %v, want false", started["uncleanRestart"])
	}
	if code := srv.stop(t, syscall.SIGKILL, 10*time.Second); code == 0 {
		t.Fatalf("serve exited 0 on SIGKILL")
	}
	if _, err := os.Stat(filepath.Join(dir, "RUNNING")); err != nil {
		t.Fatalf("the crash removed the RUNNING marker: %v", err)
	}

	srv = startServe(t, bin, dir, natsAddr)
	if started := srv.waitStarted(t); started["uncleanRestart"] != true {
		t.Errorf("start after SIGKILL: uncleanRestart = %v, want true; log:\n%s", started["uncleanRestart"], srv.logs)
	}
	if status, body := srv.get(t, "/api/v1/analytics/events/counts", key); status != http.StatusOK {
		t.Fatalf("after the restart the key no longer works: %d %s", status, body)
	}
	out = runBinary(t, bin, toolEnv, "dlq", "list", "--data-dir", dir)
	wantContains(t, "dlq list after the crash", out, "ANALYTICS_INGEST_CONSUMER")
	if code := srv.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM following a crash, want 0; log:\n%s", code, srv.logs)
	}
}

// buildBinary builds cmd/alumoutreach into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		t.Fatal("go env GOMOD: not inside the module")
	}
	bin := filepath.Join(t.TempDir(), "alumoutreach")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/alumoutreach")
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// childEnv is this process's environment without ALUM_* variables (a
// developer's own settings must not reach the binary), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ALUM_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// runBinary runs one subcommand to completion and returns its stdout; a
// non-zero exit fails the test.
func runBinary(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("alumoutreach %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveProc is a running `alumoutreach serve`.
type serveProc struct {
	cmd    *exec.Cmd
	base   string
	logs   *syncBuffer
	exited chan struct{}
	err    error // cmd.Wait's result, once exited is closed
}

func startServe(t *testing.T, bin, dir, natsAddr string) *serveProc {
	t.Helper()
	httpAddr := freeAddr(t)
	p := &serveProc{base: "http://" + httpAddr, logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--data-dir", dir, "--http-addr", httpAddr,
		"--nats-listen-addr", natsAddr, "--shutdown-timeout", "10s")
	p.cmd.Env = childEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitStarted waits until /readyz answers 200 and the log has the start-up
// line, and returns that line's fields.
func (p *serveProc) waitStarted(t *testing.T) map[string]any {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	ready := false
	for {
		select {
		case <-p.exited:
			t.Fatalf("serve exited during start-up (%v); log:\n%s", p.err, p.logs)
		default:
		}
		if !ready {
			if resp, err := client.Get(p.base + "/readyz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ready = resp.StatusCode == http.StatusOK
			}
		}
		if e := p.entry("alumoutreach started"); ready && e != nil {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 30s (readyz ok: %v); log:\n%s", ready, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// entry returns the fields of the first log line whose msg is msg.
func (p *serveProc) entry(msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil && e["msg"] == msg {
			return e
		}
	}
	return nil
}

func (p *serveProc) get(t *testing.T, path, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// stop sends sig and returns the exit code (-1 when killed by a signal),
// failing the test if the process is still running after within.
func (p *serveProc) stop(t *testing.T, sig syscall.Signal, within time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("serve still running %s after %v; log:\n%s", within, sig, p.logs)
	}
	var exitErr *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exitErr):
		return exitErr.ExitCode()
	}
	t.Fatalf("wait: %v", p.err)
	return 0
}

// publishRaw publishes data to subject through the NATS listener and waits
// for the stream to store it.
func publishRaw(t *testing.T, natsAddr, subject string, data []byte) {
	t.Helper()
	nc, err := nats.Connect("nats://"+natsAddr, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect to the embedded server's listener: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, subject, data); err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
}
