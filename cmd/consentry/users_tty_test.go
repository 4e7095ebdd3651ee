//go:build linux

package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"

	"github.com/consentry/consentry/provider"
)

// terminal is a pseudo-terminal on which a command runs in-process as if
// someone typed at it: the command gets the slave side as stdin and
// stderr, the test types into the master side and reads what the terminal
// shows.
type terminal struct {
	master, slave *os.File
	mu            sync.Mutex
	screen        strings.Builder
	done          chan struct{}
}

func openTerminal(t *testing.T) *terminal {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	tm := &terminal{master: master, slave: slave, done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		buf := make([]byte, 1024)
		for {
			n, err := master.Read(buf)
			tm.mu.Lock()
			tm.screen.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return // EIO once the slave is closed
			}
		}
	}()
	t.Cleanup(func() {
		_ = slave.Close()
		_ = master.Close()
		<-tm.done
	})
	return tm
}

// shown returns everything the terminal displayed so far.
func (tm *terminal) shown() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.screen.String()
}

// waitFor reports whether cond became true within a few seconds.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// echoOff reports whether the terminal has echo turned off.
func (tm *terminal) echoOff() bool {
	st, err := unix.IoctlGetTermios(int(tm.slave.Fd()), unix.TCGETS)
	return err == nil && st.Lflag&unix.ECHO == 0
}

// typeAfter waits for prompt (case matters: "Password: " is not in
// "Repeat password: "), then for echo to be off (typing earlier would
// be echoed whatever the command does), and types line and Enter.
func (tm *terminal) typeAfter(t *testing.T, prompt, line string) {
	t.Helper()
	if !waitFor(func() bool { return strings.Contains(tm.shown(), prompt) }) {
		t.Errorf("no prompt %q; the terminal shows %q", prompt, tm.shown())
	}
	if !waitFor(tm.echoOff) {
		t.Errorf("echo is on while %q waits for input", prompt)
	}
	if _, err := tm.master.Write([]byte(line + "\r")); err != nil {
		t.Fatal(err)
	}
}

// runAtTerminal runs the command line with the terminal as stdin and
// stderr, and types each line after its prompt.
func runAtTerminal(t *testing.T, tm *terminal, dsn string, lines []string, args ...string) int {
	t.Helper()
	e := &env{
		stdin: tm.slave, stdout: &syncBuffer{}, stderr: tm.slave,
		getenv:       func(k string) string { return map[string]string{"CONSENTRY_DSN": dsn}[k] },
		passwordCost: bcrypt.MinCost,
	}
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), e, args) }()
	for i, line := range lines {
		tm.typeAfter(t, []string{"Password: ", "Repeat password: "}[i], line)
	}
	select {
	case code := <-done:
		return code
	case <-time.After(5 * time.Second):
		// A command that reads until end of input (the old behaviour) gets
		// it as at a terminal: Ctrl-D at the start of a line.
		_, _ = tm.master.Write([]byte("\x04"))
		select {
		case code := <-done:
			return code
		case <-time.After(5 * time.Second):
			t.Fatal("the command did not finish")
			return -1
		}
	}
}

func TestUsersCreateAtTerminalDoesNotEcho(t *testing.T) {
	tm := openTerminal(t)
	dsn := tempDSN(t)
	const password = "tty-typed-s3cret"
	code := runAtTerminal(t, tm, dsn, []string{password, password}, "users", "create", "--username", "alice", "--password-stdin")
	shown := tm.shown()
	if code != 0 {
		t.Errorf("exit %d; the terminal shows %q", code, shown)
	}
	if strings.Contains(shown, password) {
		t.Errorf("the typed password is echoed: the terminal shows %q", shown)
	}
	for _, want := range []string{"Password: ", "Repeat password: "} {
		if !strings.Contains(shown, want) {
			t.Errorf("no prompt %q: the terminal shows %q", want, shown)
		}
	}
	if tm.echoOff() {
		t.Error("echo stays off after the command")
	}
	u, err := openTestStore(t, dsn).GetUserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !provider.CheckPassword(u.PasswordHash, password) {
		t.Error("the stored password is not the one typed")
	}
}

func TestUsersCreateAtTerminalRefusals(t *testing.T) {
	for _, tt := range []struct {
		name    string
		lines   []string
		wantErr string
	}{
		{"mismatch", []string{"first-password", "other-password"}, "the two passwords do not match"},
		{"empty", []string{""}, "no password entered"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tm := openTerminal(t)
			dsn := tempDSN(t)
			code := runAtTerminal(t, tm, dsn, tt.lines, "users", "create", "--username", "alice", "--password-stdin")
			// The message is written before run returns, but read from the
			// master side a moment later.
			waitFor(func() bool { return strings.Contains(tm.shown(), tt.wantErr) })
			if shown := tm.shown(); code != 2 || !strings.Contains(shown, tt.wantErr) {
				t.Errorf("exit %d; the terminal shows %q; want 2 and %q", code, shown, tt.wantErr)
			}
			if _, err := openTestStore(t, dsn).GetUserByUsername(context.Background(), "alice"); err == nil {
				t.Error("the user was created")
			}
		})
	}
}
