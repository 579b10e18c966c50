// Package buildinfo reports the version of the running binary.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set at link time: -ldflags "-X github.com/kecis/kecis/internal/buildinfo.version=v1.2.3".
var version = ""

// Version returns the release version, or the module version recorded by the
// Go toolchain, or "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// GoVersion is the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }

// Crypto names the cryptography the binary was built with: "BoringCrypto"
// when built with GOEXPERIMENT=boringcrypto (docs/development.md,
// "BoringCrypto"), else "Go crypto".
func Crypto() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOEXPERIMENT" && strings.Contains(s.Value, "boringcrypto") {
				return "BoringCrypto"
			}
		}
	}
	return "Go crypto"
}
