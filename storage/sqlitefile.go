package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// SQLiteFile returns the absolute path of the database file of a sqlite://
// DSN, and false for any other DSN.
func SQLiteFile(dsn string) (string, bool) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok || (!strings.EqualFold(scheme, "sqlite") && !strings.EqualFold(scheme, "sqlite3")) {
		return "", false
	}
	path, _, _ := strings.Cut(rest, "?")
	if path == "" || path == ":memory:" {
		return "", false
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, true
}

// DescribeDSN names the database of dsn for a log line or a message: the
// SQLite file's absolute path, or the PostgreSQL URL without its password.
func DescribeDSN(dsn string) string {
	if path, ok := SQLiteFile(dsn); ok {
		return "sqlite://" + path
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// Unparsable: the scheme alone, since the rest may hold a password.
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://..."
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// checkSQLitePath tells, before SQLite does in its own words ("unable to
// open database file: no such file or directory", naming no file), why
// the database at path cannot be opened. A missing directory is reported,
// never created: it is more likely a typo than a wish.
func checkSQLitePath(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	dir := filepath.Dir(abs)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot create the database %s: directory %s does not exist", abs, dir)
	case err != nil:
		return fmt.Errorf("cannot open the database %s: %w", abs, err)
	case !info.IsDir():
		return fmt.Errorf("cannot create the database %s: %s is not a directory", abs, dir)
	}
	// SQLite writes its -wal and -shm files beside the database, so the
	// directory must be writable even when the file exists.
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("cannot open the database %s: directory %s is not writable", abs, dir)
	}
	if info, err := os.Stat(abs); err == nil {
		if info.IsDir() {
			return fmt.Errorf("cannot open the database %s: it is a directory", abs)
		}
		if err := unix.Access(abs, unix.R_OK|unix.W_OK); err != nil {
			return fmt.Errorf("cannot open the database %s: the file is not writable", abs)
		}
	}
	return nil
}
