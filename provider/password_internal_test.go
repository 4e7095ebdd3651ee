package provider

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// At most the limit of checks run at once; the others wait, and one whose
// request ends while waiting gives up without computing anything.
func TestPasswordsHoldTheLimit(t *testing.T) {
	const limit, callers = 2, 6
	p := NewPasswords(limit)
	var running, most atomic.Int64
	entered := make(chan struct{}, callers)
	release := make(chan struct{})
	p.compare = func([]byte, string) bool {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		entered <- struct{}{}
		<-release
		running.Add(-1)
		return true
	}

	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if ok, err := p.Check(context.Background(), nil, "password"); !ok || err != nil {
				t.Errorf("Check = %v, %v", ok, err)
			}
		})
	}
	for range limit {
		<-entered
	}
	// The others must be waiting for a slot, not comparing.
	for p.Waiting() != callers-limit {
		select {
		case <-entered:
			t.Fatalf("a check ran while %d were running (limit %d)", limit, limit)
		default:
			runtime.Gosched()
		}
	}

	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Check(gone, nil, "password"); !errors.Is(err, context.Canceled) {
		t.Fatalf("check whose request ended while waiting: err = %v, want context.Canceled", err)
	}
	if _, err := p.Hash(gone, "password", 4); !errors.Is(err, context.Canceled) {
		t.Fatalf("hash whose request ended while waiting: err = %v, want context.Canceled", err)
	}

	close(release)
	wg.Wait()
	if got := most.Load(); got != limit {
		t.Errorf("at most %d checks ran at once, want %d", got, limit)
	}
	if got := p.Computed(); got != callers {
		t.Errorf("Computed = %d, want %d (the abandoned ones not counted)", got, callers)
	}
}

func TestPasswordsDefaultToHalfTheCores(t *testing.T) {
	if got, want := cap(NewPasswords(0).slots), max(1, runtime.GOMAXPROCS(0)/2); got != want {
		t.Fatalf("default limit %d, want %d", got, want)
	}
	if got := cap(NewPasswords(3).slots); got != 3 {
		t.Fatalf("limit 3 gave %d slots", got)
	}
}

func TestPasswordsHashAndCheck(t *testing.T) {
	p := NewPasswords(1)
	hash, err := p.Hash(t.Context(), "correct horse battery", 4)
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "wrong horse battery": false} {
		if ok, err := p.Check(t.Context(), hash, pw); ok != want || err != nil {
			t.Errorf("Check(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}
