package connectors

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/goccy/go-yaml"
)

// Module is a connector type a provider (or the sidecar) can load by ID
// from configuration, in the manner of caddy's modules: registered once
// with a constructor, decoded strictly (an unknown key is an error, with
// its line), then provisioned and validated; Cleanup on shutdown.
type Module interface {
	// Services are the module's functions by service URI, once provisioned.
	Services() map[string]ServiceFunc
}

// Provisioner sets a module up after its configuration was decoded.
type Provisioner interface {
	Provision(ctx context.Context) error
}

// Validator checks a provisioned module.
type Validator interface {
	Validate() error
}

// CleanerUpper releases what Provision took.
type CleanerUpper interface {
	Cleanup() error
}

// ModuleInfo registers a module: its ID ("card.example-issuer") and a
// constructor returning a fresh, zero-configured value whose exported
// fields are the YAML configuration.
type ModuleInfo struct {
	ID  string
	New func() Module
}

var (
	modulesMu sync.RWMutex
	modules   = map[string]ModuleInfo{}
	moduleID  = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)
)

// RegisterModule registers a module type. It panics on an empty,
// malformed or duplicate ID: registration happens at start-up, and a
// mistake there must stop the program.
func RegisterModule(m ModuleInfo) {
	if !moduleID.MatchString(m.ID) || m.New == nil {
		panic(fmt.Sprintf("connectors: bad module registration %q", m.ID))
	}
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if _, dup := modules[m.ID]; dup {
		panic(fmt.Sprintf("connectors: module %q registered twice", m.ID))
	}
	modules[m.ID] = m
}

// Modules lists the registered module IDs.
func Modules() []string {
	modulesMu.RLock()
	defer modulesMu.RUnlock()
	ids := make([]string, 0, len(modules))
	for id := range modules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// LoadModule builds module id from its YAML configuration: strict
// decoding, then Provision and Validate (and Cleanup if validation fails).
func LoadModule(ctx context.Context, id string, config []byte) (Module, error) {
	modulesMu.RLock()
	info, ok := modules[id]
	modulesMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("connectors: no module %q (registered: %v)", id, Modules())
	}
	m := info.New()
	if len(bytes.TrimSpace(config)) > 0 {
		if err := yaml.NewDecoder(bytes.NewReader(config), yaml.Strict(), yaml.DisallowUnknownField()).Decode(m); err != nil {
			return nil, fmt.Errorf("connectors: module %s: %w", id, err)
		}
	}
	if p, ok := m.(Provisioner); ok {
		if err := p.Provision(ctx); err != nil {
			return nil, fmt.Errorf("connectors: module %s: provision: %w", id, err)
		}
	}
	if v, ok := m.(Validator); ok {
		if err := v.Validate(); err != nil {
			if c, ok := m.(CleanerUpper); ok {
				_ = c.Cleanup()
			}
			return nil, fmt.Errorf("connectors: module %s: %w", id, err)
		}
	}
	return m, nil
}
