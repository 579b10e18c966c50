// Package webcrypto holds the browser script that encrypts a card for one
// provider in the cardholder's browser (KECIS §12.4.1, §8.2), as the hub
// serves it: the ECML card fields become the xenc:EncryptedData that the
// JSON facade takes as encrypted.card — AES-256-GCM content encryption and
// rsa-oaep-mgf1p key transport for the encryption certificate POST
// /v1/routes names, the algorithms and layout of saml.Encryptor's default.
// The script is dependency-free (Web Crypto), versioned in its file name
// and never changed under a published name: a change is a new version, so
// that the Subresource Integrity hash docs/hub.md publishes stays true and
// the hub can let browsers cache it for good.
package webcrypto

import (
	"crypto/sha256"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
)

// Version is the script's version; Name its file name.
const (
	Version = "1.0.0"
	Name    = "kecis-encrypt-" + Version + ".js"
	// Path is where the hub serves it.
	Path = "/v1/js/" + Name
)

//go:embed kecis-encrypt-1.0.0.js
var files embed.FS

// Script is the script's bytes, as served.
var Script = mustRead(Name)

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// Integrity is the Subresource Integrity value of the script
// (sha384-<base64>), for a script tag's integrity attribute.
func Integrity() string {
	sum := sha512.Sum384(Script)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}

// etag is a strong validator of the script's bytes.
func etag() string {
	sum := sha256.Sum256(Script)
	return strconv.Quote(hex.EncodeToString(sum[:16]))
}

// ServeHTTP serves the script: JavaScript, cached for a year as immutable
// (the name carries the version), readable by any origin's page (CORS, which
// a script tag with integrity and crossorigin="anonymous" needs) and never
// sniffed.
func ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", etag())
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.Header.Get("If-None-Match") == etag() {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(Script)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(Script)
	}
}
