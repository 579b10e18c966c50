package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeExampleConfig: `kecis serve` starts with the example
// configuration on SQLite (development keys generated) and answers /readyz;
// it stops gracefully when its context ends.
func TestServeExampleConfig(t *testing.T) {
	dir := t.TempDir()
	example, err := os.ReadFile("../../examples/hub/hub.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfg, example, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KECIS_LOG_LEVEL", "warn") // an environment override
	pl, _ := net.Listen("tcp", "127.0.0.1:0")
	ol, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveHub(ctx, cfg, true, pl, ol) }()
	var body string
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + ol.Addr().String() + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered 200: %v %s", err, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"database: ok", "keys: ok", "metadata: ok"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz lacks %q: %s", want, body)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dev-keys", "hub-signing", "key.pem")); err != nil {
		t.Errorf("development keys not generated: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hub.db")); err != nil {
		t.Errorf("SQLite database not created next to the config: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("no graceful shutdown")
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hub.yaml")
	os.WriteFile(cfg, []byte("entity_id: x\nlisten_typo: 1\n"), 0o600)
	code, _, stderr := kecis(t, nil, "serve", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "listen_typo") {
		t.Fatalf("an unknown key must be refused by name: %d %s", code, stderr)
	}
}
