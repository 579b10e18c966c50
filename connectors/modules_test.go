package connectors

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type echoModule struct {
	Greeting string `yaml:"greeting"`
	Limit    int    `yaml:"limit"`
	ready    bool
}

func (e *echoModule) Provision(context.Context) error { e.ready = true; return nil }
func (e *echoModule) Validate() error {
	if e.Limit < 0 {
		return errors.New("limit must not be negative")
	}
	return nil
}
func (e *echoModule) Services() map[string]ServiceFunc {
	return map[string]ServiceFunc{"urn:kecis:service:echo:say": func(context.Context, *Request) (*Response, error) { return nil, nil }}
}

var (
	_ Module      = (*echoModule)(nil)
	_ Provisioner = (*echoModule)(nil)
	_ Validator   = (*echoModule)(nil)
)

func TestModules(t *testing.T) {
	RegisterModule(ModuleInfo{ID: "test.echo", New: func() Module { return new(echoModule) }})
	m, err := LoadModule(context.Background(), "test.echo", []byte("greeting: hello\nlimit: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e := m.(*echoModule); !e.ready || e.Greeting != "hello" || len(e.Services()) != 1 {
		t.Fatalf("module not provisioned: %+v", e)
	}
	if _, err := LoadModule(context.Background(), "test.echo", []byte("greetin: typo\n")); err == nil || !strings.Contains(err.Error(), "greetin") {
		t.Fatalf("an unknown key must be refused by name: %v", err)
	}
	if _, err := LoadModule(context.Background(), "test.echo", []byte("limit: -1\n")); err == nil {
		t.Fatal("validation not applied")
	}
	if _, err := LoadModule(context.Background(), "nope", nil); err == nil {
		t.Fatal("unknown module loaded")
	}
	for _, bad := range []string{"", "Bad ID", "test.echo"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registration of %q did not panic", bad)
				}
			}()
			RegisterModule(ModuleInfo{ID: bad, New: func() Module { return new(echoModule) }})
		}()
	}
}
