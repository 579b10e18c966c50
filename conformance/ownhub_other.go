//go:build !linux

package conformance

import "syscall"

// dieWithParent: elsewhere the hub ends with Close only.
func dieWithParent() *syscall.SysProcAttr { return nil }
