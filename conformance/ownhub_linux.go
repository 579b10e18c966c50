package conformance

import "syscall"

// dieWithParent ends the hub when the suite's process dies, however it
// dies (Linux: the parent-death signal).
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
