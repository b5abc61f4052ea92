package cli

import (
	"context"
	"testing"

	"github.com/alumoutreach/alumoutreach/internal/platform/store"
)

// crashRig runs the real binary on one data directory, start after
// start, for tests that kill it: serve starts a serve and waits until it
// is up, tool runs another subcommand against the same directory, and the
// logs of every serve are printed if the test fails.
type crashRig struct {
	bin, dir, natsAddr string
	toolEnv            []string
	procs              []*serveProc
}

func newCrashRig(t *testing.T) *crashRig {
	t.Helper()
	r := &crashRig{bin: buildBinary(t), dir: t.TempDir(), natsAddr: freeAddr(t)}
	r.toolEnv = []string{"ALUM_NATS_LISTEN_ADDR=" + r.natsAddr}
	// Registered before the first serve, so it runs after their cleanups
	// (which kill any process still running): the logs are complete by then.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, p := range r.procs {
			t.Logf("serve #%d log (last lines):\n%s", i+1, tailLines(p.logs.String(), 300))
		}
	})
	return r
}

func (r *crashRig) serve(t *testing.T) *serveProc {
	t.Helper()
	p := startServe(t, r.bin, r.dir, r.natsAddr)
	r.procs = append(r.procs, p)
	p.waitStarted(t)
	return p
}

func (r *crashRig) tool(t *testing.T, args ...string) string {
	t.Helper()
	return runBinary(t, r.bin, r.toolEnv, args...)
}

// tenant creates a tenant and returns its API key and id.
func (r *crashRig) tenant(t *testing.T, name string) (key, id string) {
	t.Helper()
	out := r.tool(t, "tenant", "create", name, "--data-dir", r.dir)
	return match(t, apiKeyRe, out)[1], match(t, tenantIDRe, out)[1]
}

// openDataDir opens a stopped server's SQLite database file in dir (the
// main one when file is empty), closed when the test ends.
func openDataDir(t *testing.T, dir, file string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{DataDir: dir, FileName: file})
	if err != nil {
		t.Fatalf("open the data dir's database %q: %v", file, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
