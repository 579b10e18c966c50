//go:build unix

package kecisadapter_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process used so far: the
// cost benchmark reports it per operation, which the fsync waits that
// dominate its ns/op do not blur.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
