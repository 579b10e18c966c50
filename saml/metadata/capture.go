//go:build kecis_capture

package metadata

import "github.com/kecis/kecis/saml"

// captureMarshalled hands a serialised descriptor to the capture hook of
// kecis_capture builds (saml/capture.go); signed ones are captured by the
// Signer.
func captureMarshalled(doc []byte) { saml.CaptureDocument(doc) }
