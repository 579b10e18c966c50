package faulttest

import "syscall"

// procAttr makes a replica die with the test binary (SIGKILL when its
// parent goes), so that a test killed by its timeout leaves no `kecis
// serve` behind.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
