package sqlstore

import (
	"os"
	"runtime"
)

// ProcsEnv is the environment variable that fixes GOMAXPROCS: when it is
// set, RaiseProcs leaves the runtime alone.
const ProcsEnv = "GOMAXPROCS"

// RaiseProcs gives a process that commits to SQLite files one more P (the
// Go scheduler's licence to run Go code on a CPU) per database it writes,
// at most doubling the runtime's default, and returns GOMAXPROCS as it
// then is. A program calls it once at start, with the number of SQLite
// databases it opened for writing; it does nothing when the GOMAXPROCS
// environment variable is set (the operator's choice wins), or for
// writers <= 0 (PostgreSQL only: its waits are network reads, which park
// in the netpoller and hold no P).
//
// Why: modernc.org/sqlite issues its pwrite and fsync calls as blocking
// system calls, and a goroutine blocked in one keeps its P until the
// runtime's monitor hands the P on, which it does late while another P is
// idle. Each database's group-commit writer (Group) spends most of a
// commit in fsync — in the demo under 16 clients, 1.25 goroutines on
// average were in fsync at any instant — so with one P per CPU the
// process left CPUs idle while requests waited to run. Measured on the
// demo (2 cores, 16 clients, docs/performance.md): GOMAXPROCS 3, 4 or 6
// instead of 2 carried 10–20 % more approvals per second at the same CPU
// per approval. Setting GOMAXPROCS explicitly also stops the runtime from
// following later changes of a container's CPU limit (Go 1.25); a process
// whose limit changes while it runs keeps the value computed at start.
func RaiseProcs(writers int) int {
	return raiseProcs(writers, os.LookupEnv, runtime.GOMAXPROCS)
}

// raiseProcs is RaiseProcs with the environment and the runtime's setter
// injected (gomaxprocs(0) reads, gomaxprocs(n) sets and returns the old).
func raiseProcs(writers int, lookupEnv func(string) (string, bool), gomaxprocs func(int) int) int {
	cur := gomaxprocs(0)
	if writers <= 0 {
		return cur
	}
	if _, set := lookupEnv(ProcsEnv); set {
		return cur
	}
	n := cur + min(writers, cur)
	gomaxprocs(n)
	return n
}
