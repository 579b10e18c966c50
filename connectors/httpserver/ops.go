package httpserver

import (
	"context"
	"fmt"
	"net/http"
)

// Ops is a process's operations endpoints, on a listener of their own for
// the orchestrator and Prometheus — the hub's and the adapter sidecar's
// alike:
//
//   - GET /healthz answers 200 "ok" while the process serves;
//   - GET /readyz runs the readiness checks and answers one line per
//     check, in the order of Checks — "name: ok" or "name: why" — with 200
//     when every one passes and 503 as soon as one fails;
//   - GET /metrics is Metrics (Prometheus's exposition; promhttp).
//
// It takes the metrics as a handler, not a registry, so that this package
// stays on the standard library.
type Ops struct {
	// Checks names the readiness checks, in the order /readyz lists them.
	Checks []string
	// Ready runs the checks: an error for each that fails, nil (or no
	// entry) for one that passes. A name Ready answers that is not in
	// Checks is not shown, but still makes /readyz fail.
	Ready func(ctx context.Context) map[string]error
	// OnCheck, when set, is told each named check's result at every
	// /readyz (a gauge per check: 1 passing, 0 failing).
	OnCheck func(name string, ok bool)
	// Metrics serves /metrics; nil serves none.
	Metrics http.Handler
}

// Handler serves the endpoints.
func (o Ops) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", o.readyz)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	return mux
}

func (o Ops) readyz(w http.ResponseWriter, r *http.Request) {
	var checks map[string]error
	if o.Ready != nil {
		checks = o.Ready(r.Context())
	}
	code := http.StatusOK
	for _, err := range checks {
		if err != nil {
			code = http.StatusServiceUnavailable
		}
	}
	if o.OnCheck != nil {
		for _, name := range o.Checks {
			o.OnCheck(name, checks[name] == nil)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	for _, name := range o.Checks {
		if err := checks[name]; err != nil {
			fmt.Fprintf(w, "%s: %v\n", name, err)
		} else {
			fmt.Fprintf(w, "%s: ok\n", name)
		}
	}
}
