package sms

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/kecis/kecis/ecml"
)

// logBuffer collects slog output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newTestLogger returns a logger that records every level.
func newTestLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// assertNoSecrets fails when the logs carry a card number or any of the
// given strings.
func assertNoSecrets(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	if ecml.ContainsPAN(logs) {
		t.Errorf("logs contain a card number:\n%s", logs)
	}
	for _, s := range secrets {
		if bytes.Contains([]byte(logs), []byte(s)) {
			t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}
