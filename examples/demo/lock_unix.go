//go:build unix

package demo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the lock a running demo holds in its directory, so that a
// second demo started in the same directory stops before it touches the
// first one's demo.json, databases or ports (docs/demo.md).
const LockFile = "demo.lock"

// ErrLocked is returned by Start when another demo runs in the directory.
var ErrLocked = errors.New("another demo is running in this directory")

// lock takes the directory's lock (flock, released by the kernel if the
// process dies, so a crash leaves no stale lock) and writes our process ID
// into it for the error message of the next one.
func lock(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil {
				return nil, fmt.Errorf("%w (%s, process %d): stop it first, or give this one another --dir", ErrLocked, dir, pid)
			}
			return nil, fmt.Errorf("%w (%s): stop it first, or give this one another --dir", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
