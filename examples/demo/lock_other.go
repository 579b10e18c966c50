//go:build !unix

package demo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LockFile is the lock a running demo holds in its directory, so that a
// second demo started in the same directory stops before it touches the
// first one's demo.json, databases or ports (docs/demo.md).
const LockFile = "demo.lock"

// ErrLocked is returned by Start when another demo runs in the directory.
var ErrLocked = errors.New("another demo is running in this directory")

// lock creates the lock file exclusively (no flock here): a demo that
// crashed leaves it behind, and the error says to remove it.
func lock(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w (%s): stop it first, or remove %s if it crashed", ErrLocked, dir, path)
	}
	if err != nil {
		return nil, err
	}
	return func() { f.Close(); os.Remove(path) }, nil
}
