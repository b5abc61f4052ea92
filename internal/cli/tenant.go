package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/alumoutreach/alumoutreach/internal/app"
	"github.com/alumoutreach/alumoutreach/internal/config"
	"github.com/alumoutreach/alumoutreach/internal/platform/tenant"
)

const tenantUsage = `alumoutreach tenant create NAME [flags]
  alumoutreach tenant list [flags]
  alumoutreach tenant key create TENANT_ID [--name NAME] [flags]
  alumoutreach tenant key list TENANT_ID [flags]
  alumoutreach tenant key revoke TENANT_ID KEY_ID [flags]`

func runTenant(ctx context.Context, cio cmdIO, args []string) error {
	fs := newFlags(cio, "tenant", tenantUsage, `Manages tenants and their API keys in the configured database (works whether or
not 'serve' is running). A new key is printed once and stored only as a hash:
keep it; a lost key is revoked and replaced, never shown again. Every /api/v1
request sends it as 'Authorization: Bearer <key>' and acts within its tenant.`)
	keyName := fs.String("name", "", "a label for the new API key, e.g. \"crm-sync\"")
	cfg, pos, err := loadConfig(cio, fs, args, config.ConnectFlags())
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("say what to do: create, list or key")
	}
	db, err := app.OpenDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := tenant.New(db, logger(cfg, cio.err))
	switch {
	case pos[0] == "create" && len(pos) == 2:
		t, key, err := svc.Create(ctx, pos[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(cio.out, "tenant %q created\n  id:      %s\n  api key: %s\n\nThe key is shown only now. Use it as: Authorization: Bearer %s\n", t.Name, t.ID, key, key)
		return nil
	case pos[0] == "list" && len(pos) == 1:
		ts, err := svc.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cio.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case pos[0] == "key" && len(pos) == 3 && pos[1] == "create":
		k, key, err := svc.CreateKey(ctx, pos[2], *keyName)
		if err != nil {
			return err
		}
		fmt.Fprintf(cio.out, "api key %s created for tenant %s\n  api key: %s\n\nThe key is shown only now.\n", k.ID, k.TenantID, key)
		return nil
	case pos[0] == "key" && len(pos) == 3 && pos[1] == "list":
		ks, err := svc.ListKeys(ctx, pos[2])
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cio.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tCREATED\tREVOKED")
		for _, k := range ks {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Prefix, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case pos[0] == "key" && len(pos) == 4 && pos[1] == "revoke":
		if err := svc.RevokeKey(ctx, pos[2], pos[3]); err != nil {
			return err
		}
		fmt.Fprintf(cio.out, "api key %s revoked\n", pos[3])
		return nil
	}
	return usageErrorf("unknown or incomplete tenant command %q", pos)
}
