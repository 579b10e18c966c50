package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// TestHubConfig: the hub's configuration, marshalled from a value and
// loaded as `kecis serve` loads it, carries what the demo sets — the
// addresses bound, the relay timeout, the clear-card mode, each merchant's
// API key by its hash — and the hub's defaults for the rest.
func TestHubConfig(t *testing.T) {
	d, err := newDemo(Config{Dir: t.TempDir(), RelayTimeout: 3 * time.Second, AllowClearCard: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.run(context.Background(), d.steps()[:1]); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := d.Hub.Config
	if c.EntityID != HubID || c.PublicURL != d.HubURL || "http://"+c.OpsListen != d.HubOps || c.Limits.RelayTimeout.D() != 3*time.Second ||
		!c.Facade.AllowClearCard || c.Database.DSN != "sqlite:hub.db" || c.Log.Format != "json" || c.Metadata.Validity == 0 {
		t.Fatalf("hub config: %+v", c)
	}
	if len(c.Facade.APIKeys) != len(d.Merchants) {
		t.Fatalf("API keys: %+v", c.Facade.APIKeys)
	}
	for i, m := range d.Merchants {
		sum := sha256.Sum256([]byte(m.APIKey))
		if k := c.Facade.APIKeys[i]; k.EntityID != m.EntityID || k.KeySHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("API key %d: %+v, want %s's", i, k, m.EntityID)
		}
	}
}
