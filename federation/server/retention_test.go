package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kecis/kecis/federation/router"
	"github.com/kecis/kecis/federation/server"
)

// TestDatabaseRetentionKeys: database.idempotency_retention and
// prune_limit default to the router's defaults, take YAML and
// KECIS_DATABASE_* overrides, and refuse negative values (KECIS §12.3).
func TestDatabaseRetentionKeys(t *testing.T) {
	write := func(t *testing.T, db string) string {
		dir := t.TempDir()
		path := filepath.Join(dir, "hub.yaml")
		cfg := "entity_id: https://hub.test/kecis\ntls: {cert: tls/cert.pem, key: tls/key.pem}\nsigning: {cert: s/cert.pem, key: s/key.pem}\ndatabase: {dsn: \"sqlite:hub.db\"" + db + "}\n"
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	c, err := server.LoadConfig(write(t, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.IdempotencyRetention.D() != router.DefaultIdemRetention || c.Database.PruneLimit != router.DefaultPruneLimit {
		t.Errorf("defaults %v/%d, want %v/%d", c.Database.IdempotencyRetention.D(), c.Database.PruneLimit, router.DefaultIdemRetention, router.DefaultPruneLimit)
	}
	c, err = server.LoadConfig(write(t, ", idempotency_retention: 48h"), []string{"KECIS_DATABASE_PRUNE_LIMIT=64"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.IdempotencyRetention.D() != 48*time.Hour || c.Database.PruneLimit != 64 {
		t.Errorf("set %v/%d, want 48h/64", c.Database.IdempotencyRetention.D(), c.Database.PruneLimit)
	}
	_, err = server.LoadConfig(write(t, ", prune_limit: -1"), nil)
	if err == nil || !strings.Contains(err.Error(), "database.prune_limit") {
		t.Errorf("a negative prune_limit: %v", err)
	}
}
