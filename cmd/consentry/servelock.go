package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// serveLock is held by a serve on a SQLite database for as long as it
// runs: a second serve on the same file would share its writes unseen (and
// --demo would rewrite the demo client under the first), so it is refused.
// The other commands (users create and the like) do not take it and work
// while serve runs.
type serveLock struct{ f *os.File }

// lockSQLiteForServe takes the lock of the database file db (an absolute
// path): an exclusive advisory lock (flock) on db+".lock", which the kernel
// releases when the process ends however it ends, so a crash leaves no
// stale lock behind. The file holds the pid of the serve holding it.
func lockSQLiteForServe(db string) (*serveLock, error) {
	path := db + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		// The database cannot be created there either: opening it says
		// why, naming the directory.
		return &serveLock{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock the database %s: %w", db, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another consentry serve"
			raw := make([]byte, 32)
			if n, _ := f.ReadAt(raw, 0); n > 0 {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(raw[:n]))); err == nil {
					holder += fmt.Sprintf(" (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("the database %s is in use by %s; stop it first, or give this one its own database with --dsn", db, holder)
		}
		return nil, fmt.Errorf("lock the database %s: %w", db, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &serveLock{f: f}, nil
}

// release gives the lock up; the file stays, for the next serve to lock.
func (l *serveLock) release() {
	if l.f == nil {
		return
	}
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
}
