//go:build !unix

package kecisadapter_test

import "time"

// cpuTime is unknown here: the benchmark reports 0 CPU per operation.
func cpuTime() time.Duration { return 0 }
