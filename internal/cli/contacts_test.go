package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
)

func TestContactsImportCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"ALUM_DATA_DIR": dir}
	tenantID := match(t, tenantIDRe, mustRun(t, env, "tenant", "create", "Alumni Office"))[1]

	var b strings.Builder
	b.WriteString("email,firstName,attributes.classYear\n")
	for i := range 1200 {
		fmt.Fprintf(&b, "person%d@example.org,P%d,%d\n", i, i, 1990+i%30)
	}
	b.WriteString("broken,row,1\n")
	file := filepath.Join(t.TempDir(), "alumni.csv")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	r := run(t, env, "contacts", "import", file, "--tenant", "Alumni Office")
	if r.code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	wantContains(t, "import output", r.out, "completed: 1201 rows, 1200 created, 0 updated, 1 failed", "/errors")
	wantContains(t, "progress", r.err, "1201/1201 rows", "100%", "failed 1")

	// Re-running the same file in upsert mode changes nothing and fails only the bad row.
	out := mustRun(t, env, "contacts", "import", file, "--tenant", tenantID, "--mode", "upsert")
	wantContains(t, "upsert re-run", out, "1201 rows, 0 created, 0 updated, 1 failed")

	cfg := config.Default()
	cfg.DataDir = dir
	db, err := app.OpenDB(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var contacts, events int
	if err := db.Reader().QueryRow(`SELECT (SELECT count(*) FROM contacts WHERE tenant_id = $1), (SELECT count(*) FROM outbox WHERE subject = 'contact.created')`, tenantID).Scan(&contacts, &events); err != nil {
		t.Fatal(err)
	}
	if contacts != 1200 || events != 1200 {
		t.Fatalf("%d contacts and %d contact.created events in the outbox, want 1200 each", contacts, events)
	}
}

func TestContactsImportUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"contacts", "--data-dir", dir}, "contacts import FILE"},
		{[]string{"contacts", "import", "x.csv", "--data-dir", dir}, "--tenant is required"},
		{[]string{"contacts", "import", "x.txt", "--tenant", "t", "--data-dir", dir}, "--format csv"},
	}
	for _, tt := range tests {
		r := run(t, nil, tt.args...)
		if r.code != 2 || !strings.Contains(r.err, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.err, tt.want)
		}
	}
	r := run(t, nil, "contacts", "import", filepath.Join(dir, "missing.csv"), "--tenant", "t", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.err, "missing.csv") {
		t.Errorf("missing file: exit %d %q", r.code, r.err)
	}
	f := filepath.Join(dir, "a.csv")
	os.WriteFile(f, []byte("email\na@example.org\n"), 0o600)
	r = run(t, nil, "contacts", "import", f, "--tenant", "nobody", "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.err, "no tenant has the id or name nobody") {
		t.Errorf("unknown tenant: exit %d %q", r.code, r.err)
	}
}
