//go:build !linux

package faulttest

import "syscall"

// procAttr: elsewhere a replica outlives a test binary killed by its
// timeout; the tests stop every replica they start when they end.
func procAttr() *syscall.SysProcAttr { return nil }
