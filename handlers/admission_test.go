package handlers

import (
	"context"
	"errors"
	"runtime"
	"testing"
)

func TestAdmissionHoldsTheLimit(t *testing.T) {
	a := newAdmission(2)
	var leaves []func()
	for range 2 {
		leave, err := a.enter(context.Background())
		if err != nil {
			t.Fatalf("enter below the limit: %v", err)
		}
		leaves = append(leaves, leave)
	}

	// Full: a request whose client has gone away is turned back, not
	// admitted past the limit.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.enter(gone); !errors.Is(err, context.Canceled) {
		t.Fatalf("enter at the limit with a cancelled request: err = %v, want context.Canceled", err)
	}

	leaves[0]()
	leave, err := a.enter(context.Background())
	if err != nil {
		t.Fatalf("enter after a slot was given back: %v", err)
	}
	leave()
	leaves[1]()
	if len(a) != 0 {
		t.Fatalf("%d slots still held after every request left", len(a))
	}
}

func TestAdmissionDefaultsToTheCores(t *testing.T) {
	if got, want := cap(newAdmission(0)), runtime.GOMAXPROCS(0); got != want {
		t.Fatalf("default limit %d, want the number of cores (GOMAXPROCS) %d", got, want)
	}
	if got := cap(newAdmission(3)); got != 3 {
		t.Fatalf("limit 3 gave %d slots", got)
	}
}
