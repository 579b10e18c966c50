package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kecis/kecis/ecml"
	"github.com/kecis/kecis/examples/telecom"
	"github.com/kecis/kecis/internal/demo"
	"github.com/kecis/kecis/internal/testutil"
)

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestDemoCurlApproves: what `make run` starts comes up on a fresh
// directory, and the curl line it prints approves a card payment through the
// JSON facade; the cardholder's phone gets the issuer's text.
func TestDemoCurlApproves(t *testing.T) {
	testutil.RequireTool(t, "curl", "curl")
	out := &lockedBuf{}
	ready := make(chan *demo.Demo, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	dir := t.TempDir()
	go func() {
		done <- runFederationDemo(ctx, out, dir, demoAddrs{"127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"}, ready)
	}()
	var d *demo.Demo
	select {
	case d = <-ready:
	case err := <-done:
		t.Fatalf("demo did not start: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not start in time")
	}
	defer func() {
		cancel()
		<-done
	}()
	guide := out.String()
	start := strings.Index(guide, "  T=$(date")
	end := strings.Index(guide, "\n\nThen open")
	if start < 0 || end < start {
		t.Fatalf("no curl line in the guide:\n%s", guide)
	}
	if !strings.Contains(guide, "accepts card numbers in clear") {
		t.Fatal("the demo must say that the facade's clear-card mode is on")
	}
	line := guide[start:end]
	res, err := exec.Command("sh", "-c", line).CombinedOutput()
	if err != nil {
		t.Fatalf("the printed curl line failed: %v\n%s", err, res)
	}
	var body map[string]any
	if err := json.Unmarshal(res, &body); err != nil || body["status"] != "Success" || body["outcome"] != "answered" {
		t.Fatalf("the printed curl line did not approve: %s", res)
	}
	phone := d.Cards[0].Phone
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := d.Telecom.WaitForMessage(wctx, phone, func(m telecom.Message) bool { return strings.Contains(m.Text, "15,000") }); err != nil {
		t.Fatalf("no approval text: %v", err)
	}
	// The hub's answer to the merchant holds no card number.
	if ecml.ContainsPAN(string(res)) {
		t.Fatal("the facade's answer holds a card number")
	}
}
