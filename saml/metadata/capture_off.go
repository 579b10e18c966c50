//go:build !kecis_capture

package metadata

// captureMarshalled does nothing outside kecis_capture builds (capture.go).
func captureMarshalled([]byte) {}
