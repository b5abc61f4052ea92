package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/platform/tenant"
)

// result is what one Main call left behind.
type result struct {
	code     int
	out, err string
}

// run calls Main with args in an environment made only of env (never the
// real one, so a developer's ALUM_* variables cannot leak in). Unless env
// says otherwise, the embedded NATS loopback listener is off: the default,
// 127.0.0.1:4222, may belong to a real server on this machine, which no
// test may bind or talk to.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	full := map[string]string{"ALUM_NATS_LISTEN_ADDR": "off"}
	for k, v := range env {
		full[k] = v
	}
	var out, errOut bytes.Buffer
	code := Main(args, &out, &errOut, func(k string) string { return full[k] })
	return result{code: code, out: out.String(), err: errOut.String()}
}

// mustRun is run that fails the test unless Main exits 0.
func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	r := run(t, env, args...)
	if r.code != 0 {
		t.Fatalf("alumoutreach %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// freeAddr returns a loopback address nothing listens on (it was free a
// moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	// Below Linux's ephemeral range (32768-60999), which the kernel also
	// hands to outgoing connections: a port picked there with :0 could be
	// taken by another test's client before the server binds it.
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		return addr
	}
	t.Fatal("no free port between 20000 and 32000")
	return ""
}

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{"Usage:\n  alumoutreach <command> [flags]", "Commands:", "serve", "tenant", "dlq"}},
		{[]string{"--help"}, []string{"Commands:"}},
		{[]string{"-h"}, []string{"Commands:"}},
		{[]string{"help"}, []string{"Commands:"}},
		{[]string{"help", "tenant"}, []string{"alumoutreach tenant create NAME", "-data-dir"}},
		{[]string{"dlq", "-h"}, []string{"alumoutreach dlq list"}},
	}
	for _, c := range commands() {
		want := []string{"Usage:\n  alumoutreach " + c.name, "Flags:"}
		if c.name != "bench" { // bench works in a directory of its own
			want = append(want, "-config", "-data-dir", "ALUM_DATA_DIR")
		}
		tests = append(tests, struct {
			args []string
			want []string
		}{[]string{c.name, "--help"}, want})
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.err)
			}
			wantContains(t, "stdout", r.out, tt.want...)
			if r.err != "" {
				t.Errorf("help wrote to stderr:\n%s", r.err)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown command", []string{"nope"}, []string{`unknown command "nope"`, "alumoutreach --help"}},
		{"unknown flag", []string{"tenant", "list", "--bogus", "--data-dir", dir}, []string{"-bogus", "alumoutreach tenant --help"}},
		{"bad flag value", []string{"serve", "--nats-max-age", "week"}, []string{"nats-max-age", `"week" is not a duration`}},
		{"tenant without verb", []string{"tenant", "--data-dir", dir}, []string{"create, list or key"}},
		{"tenant create without name", []string{"tenant", "create", "--data-dir", dir}, []string{"tenant"}},
		{"migrate with arguments", []string{"migrate", "now", "--data-dir", dir}, []string{"no arguments"}},
		{"serve with arguments", []string{"serve", "now", "--data-dir", dir}, []string{"no arguments"}},
		{"dlq without verb", []string{"dlq", "--data-dir", dir}, []string{"list, show, replay or purge"}},
		{"dlq unknown verb", []string{"dlq", "drop", "--data-dir", dir}, []string{`unknown dlq command "drop"`}},
		{"dlq replay without SEQ", []string{"dlq", "replay", "--data-dir", dir}, []string{"dlq replay needs the SEQ", "--all", "alumoutreach dlq --help"}},
		{"dlq purge without SEQ", []string{"dlq", "purge", "--data-dir", dir}, []string{"dlq purge needs the SEQ", "--all"}},
		{"dlq replay SEQ and --all", []string{"dlq", "replay", "3", "--all", "--data-dir", dir}, []string{"either SEQ or --all"}},
		{"dlq show without SEQ", []string{"dlq", "show", "--data-dir", dir}, []string{"dlq show needs the SEQ"}},
		{"dlq show bad SEQ", []string{"dlq", "show", "abc", "--data-dir", dir}, []string{"SEQ must be the positive number", `"abc"`}},
		{"dlq show zero", []string{"dlq", "show", "0", "--data-dir", dir}, []string{"SEQ must be the positive number"}},
		{"bench without scenario", []string{"bench"}, []string{"name one scenario"}},
		{"bench unknown scenario", []string{"bench", "warp"}, []string{`unknown scenario "warp"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2 (usage error)\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
			}
			wantContains(t, "stderr", r.err, tt.want...)
			if r.out != "" {
				t.Errorf("a usage error wrote to stdout (scripts read it):\n%s", r.out)
			}
			// The flag package prints its own copy of the error unless
			// told not to; the operator should read it once.
			if first := strings.SplitN(r.err, "\n", 2)[0]; strings.Count(r.err, strings.TrimPrefix(first, "alumoutreach ")) > 1 {
				t.Errorf("error printed more than once:\n%s", r.err)
			}
		})
	}
	// Usage errors are found before anything is opened.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors touched the data directory: %v", entries)
	}
}

func TestBadSettingsNameTheSettingAndTheFix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfgFile := filepath.Join(t.TempDir(), "alumoutreach.yaml")
	if err := os.WriteFile(cfgFile, []byte("http-addr: \":8080\"\nnats:\n  replica: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"variable not a number", map[string]string{"ALUM_NATS_REPLICAS": "x"},
			[]string{"migrate", "--data-dir", dir}, []string{"configuration", "ALUM_NATS_REPLICAS", `"x" is not a whole number`}},
		{"variable out of range", map[string]string{"ALUM_NATS_REPLICAS": "3"},
			[]string{"serve", "--data-dir", dir}, []string{"nats.replicas 3", "use 1 or set nats.url"}},
		{"http addr", nil,
			[]string{"serve", "--data-dir", dir, "--http-addr", "nonsense"}, []string{`http-addr "nonsense"`, "use host:port such as :8080"}},
		{"nats listen addr", map[string]string{"ALUM_NATS_LISTEN_ADDR": "4222"},
			[]string{"dlq", "list", "--data-dir", dir}, []string{`nats.listen-addr "4222"`, "127.0.0.1:4222", "empty to turn the listener off"}},
		{"unknown key in the config file", nil,
			[]string{"tenant", "list", "--config", cfgFile, "--data-dir", dir}, []string{cfgFile, "line 3", `unknown key "nats.replica"`, `did you mean "replicas"`}},
		{"config file from ALUM_CONFIG", map[string]string{"ALUM_CONFIG": cfgFile},
			[]string{"migrate", "--data-dir", dir}, []string{`unknown key "nats.replica"`}},
		{"missing config file", nil,
			[]string{"migrate", "--config", filepath.Join(dir, "nope.yaml"), "--data-dir", dir}, []string{"nope.yaml"}},
		{"database url", map[string]string{"ALUM_DATABASE_URL": "mysql://root:secret@db/alum"},
			[]string{"tenant", "list", "--data-dir", dir}, []string{"database-url", "use postgres://", "xxxxx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.env, tt.args...)
			if r.code == 0 {
				t.Fatalf("exit 0 with a bad setting\nstdout:\n%s", r.out)
			}
			wantContains(t, "stderr", r.err, tt.want...)
			if strings.Contains(r.err, "secret") {
				t.Errorf("stderr shows a password:\n%s", r.err)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a bad configuration still touched the data directory: %v", entries)
	}
}

var (
	tenantIDRe = regexp.MustCompile(`(?m)^\s+id:\s+(\S+)$`)
	apiKeyRe   = regexp.MustCompile(`(?m)^\s+api key:\s+(alum_\S+)$`)
	keyIDRe    = regexp.MustCompile(`(?m)^api key (\S+) created for tenant (\S+)$`)
)

func match(t *testing.T, re *regexp.Regexp, s string) []string {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("output does not match %s:\n%s", re, s)
	}
	return m
}

// authenticate checks key against the data directory's database through
// the real tenant service, as serve would.
func authenticate(t *testing.T, dir, key string) (string, error) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	db, err := app.OpenDB(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return tenant.New(db, slog.New(slog.NewTextHandler(io.Discard, nil))).Authenticate(context.Background(), key)
}

func TestTenantsAndKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{}

	out := mustRun(t, env, "tenant", "create", "Alumni Office", "--data-dir", dir)
	tenantID := match(t, tenantIDRe, out)[1]
	firstKey := match(t, apiKeyRe, out)[1]
	wantContains(t, "tenant create", out, `tenant "Alumni Office" created`, "shown only now", "Authorization: Bearer "+firstKey)
	if got, err := authenticate(t, dir, firstKey); err != nil || got != tenantID {
		t.Fatalf("printed key authenticates as %q, %v; want tenant %s", got, err, tenantID)
	}

	// Flags before the positional arguments work too, and ALUM_DATA_DIR is
	// read like --data-dir.
	mustRun(t, map[string]string{"ALUM_DATA_DIR": dir}, "tenant", "create", "Second")
	out = mustRun(t, env, "tenant", "--data-dir", dir, "list")
	wantContains(t, "tenant list", out, "ID", "NAME", "CREATED", tenantID, "Alumni Office", "Second")

	out = mustRun(t, env, "tenant", "key", "create", tenantID, "--name", "crm-sync", "--data-dir", dir)
	m := match(t, keyIDRe, out)
	keyID := m[1]
	if m[2] != tenantID {
		t.Fatalf("key created for tenant %s, want %s", m[2], tenantID)
	}
	secondKey := match(t, apiKeyRe, out)[1]
	if secondKey == firstKey {
		t.Fatal("the new key equals the first one")
	}

	out = mustRun(t, env, "tenant", "key", "list", tenantID, "--data-dir", dir)
	wantContains(t, "key list", out, "PREFIX", "REVOKED", keyID, "crm-sync", secondKey[:12])
	if strings.Contains(out, secondKey) {
		t.Fatalf("key list shows a whole key:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("key list has %d lines, want a header and 2 keys:\n%s", n, out)
	}

	out = mustRun(t, env, "tenant", "key", "revoke", tenantID, keyID, "--data-dir", dir)
	wantContains(t, "key revoke", out, "api key "+keyID+" revoked")
	if _, err := authenticate(t, dir, secondKey); err == nil {
		t.Fatal("the revoked key still authenticates")
	}
	if got, err := authenticate(t, dir, firstKey); err != nil || got != tenantID {
		t.Fatalf("revoking one key broke the other: %q, %v", got, err)
	}
	out = mustRun(t, env, "tenant", "key", "list", tenantID, "--data-dir", dir)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, keyID) && strings.HasSuffix(strings.TrimSpace(line), "-") {
			t.Errorf("revoked key listed as not revoked: %q", line)
		}
	}

	errTests := []struct {
		name string
		args []string
		want string
	}{
		{"key for an unknown tenant", []string{"tenant", "key", "create", "no-such-tenant"}, "no-such-tenant"},
		{"revoke an unknown key", []string{"tenant", "key", "revoke", tenantID, "no-such-key"}, "no-such-key"},
		{"empty name", []string{"tenant", "create", " "}, "empty"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, env, append(tt.args, "--data-dir", dir)...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\nstderr:\n%s", r.code, r.err)
			}
			wantContains(t, "stderr", r.err, tt.want)
		})
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for range 2 { // a second run finds nothing to do and succeeds
		out := mustRun(t, nil, "migrate", "--data-dir", dir)
		wantContains(t, "migrate", out, "migrations applied to sqlite:", filepath.Join(dir, "alumoutreach.db"))
	}
	for _, f := range []string{"alumoutreach.db", "analytics.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("migrate left no %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "nats")); !os.IsNotExist(err) {
		t.Errorf("migrate opened the bus (nats store: %v); it needs only the database", err)
	}
}

// TestDLQOnAStoppedDataDir runs the dlq subcommand with no serve running:
// it must open the embedded server on the data directory itself, whether
// the loopback listener is off or configured but nobody listens there.
func TestDLQOnAStoppedDataDir(t *testing.T) {
	t.Parallel()
	for _, listen := range []string{"off", freeAddr(t)} {
		t.Run("listen "+listen, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := map[string]string{"ALUM_NATS_LISTEN_ADDR": listen}

			out := mustRun(t, env, "dlq", "list", "--data-dir", dir)
			if first := strings.SplitN(out, "\n", 2)[0]; !strings.HasPrefix(first, "SEQ") || !strings.Contains(first, "CONSUMER") || strings.Count(out, "\n") != 1 {
				t.Errorf("dlq list on an empty DLQ = %q, want the header only", out)
			}
			if _, err := os.Stat(filepath.Join(dir, "nats")); err != nil {
				t.Errorf("dlq list did not open the embedded store in the data dir: %v", err)
			}
			out = mustRun(t, env, "dlq", "list", "--json", "--data-dir", dir)
			wantContains(t, "dlq list --json", out, `"items": []`, `"next": 0`)

			for _, args := range [][]string{{"show", "999"}, {"replay", "999"}, {"purge", "999"}} {
				r := run(t, env, append(append([]string{"dlq"}, args...), "--data-dir", dir)...)
				if r.code != 1 {
					t.Fatalf("dlq %s: exit %d, want 1\nstderr:\n%s", args, r.code, r.err)
				}
				wantContains(t, "dlq "+strings.Join(args, " "), r.err, "alumoutreach dlq:", "no entry with seq 999", "dlq list")
			}
			out = mustRun(t, env, "dlq", "replay", "--all", "--data-dir", dir)
			wantContains(t, "dlq replay --all", out, "replayed 0 dead letter(s)")
		})
	}
}

func TestConfigPrintsEffectiveSettings(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ALUM_HTTP_ADDR": "127.0.0.1:9999", "ALUM_DATABASE_URL": "postgres://u:hunter2@db:5432/alum"}
	out := mustRun(t, env, "config", "--nats-max-age", "72h")
	wantContains(t, "config", out, "127.0.0.1:9999", "72h", "xxxxx", "ALUM_NATS_MAX_AGE", "--nats-max-age")
	if strings.Contains(out, "hunter2") {
		t.Errorf("config shows the database password:\n%s", out)
	}
}

func TestParseRateAndMedian(t *testing.T) {
	t.Parallel()
	out := "running pipeline (sync 1s) in /tmp/x\n  ... 5 of 10 events stored\npipeline  events=1000000 elapsed=30.8s rate=32432/s peakRSS=600MiB\n"
	if r, ok := parseRate(out, "pipeline"); !ok || r != 32432 {
		t.Fatalf("parseRate = %v, %v", r, ok)
	}
	if _, ok := parseRate(out, "ceiling"); ok {
		t.Fatal("found a ceiling rate in pipeline output")
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median = %v", m)
	}
}
