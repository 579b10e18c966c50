package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/kecis/kecis/connectors/httpserver"
)

// startPProf serves the Go runtime's profiles (net/http/pprof) of the whole
// demo — every participant runs in this one process — on addr, which must be
// a loopback address: the profiles carry memory contents, so they are never
// published; log gets the server's errors. It returns the address bound and a function that stops it.
func startPProf(addr string, log *slog.Logger) (string, func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, usageError{fmt.Errorf("--pprof %q: %w", addr, err)}
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, usageError{fmt.Errorf("--pprof %q: not a loopback address", addr)}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Built as every server of the project (connectors/httpserver's
	// timeouts and body cap); a CPU profile or trace runs for its seconds
	// parameter (default 30 s), so writes may take up to two minutes.
	srv := httpserver.New(mux, httpserver.Limits{WriteTimeout: 2 * time.Minute}, log)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profiles no longer served", "err", err)
		}
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
