package provider

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/ory/fosite"
)

func TestSigningSlotsHoldTheLimit(t *testing.T) {
	s := newSigningSlots(2)
	var leaves []func()
	for range 2 {
		leave, err := s.enter(context.Background())
		if err != nil {
			t.Fatalf("enter below the limit: %v", err)
		}
		leaves = append(leaves, leave)
	}

	// Full: a request whose client has gone away is turned back with
	// temporarily_unavailable, not admitted past the limit.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.enter(gone); !errors.Is(err, fosite.ErrTemporarilyUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("enter at the limit with a cancelled request: err = %v, want temporarily_unavailable wrapping context.Canceled", err)
	}

	leaves[0]()
	leave, err := s.enter(context.Background())
	if err != nil {
		t.Fatalf("enter after a slot was given back: %v", err)
	}
	leave()
	leaves[1]()
	if len(s) != 0 {
		t.Fatalf("%d slots still held after every signature ended", len(s))
	}
}

func TestSigningSlotsDefaultToTheCores(t *testing.T) {
	if got, want := cap(newSigningSlots(0)), runtime.GOMAXPROCS(0); got != want {
		t.Fatalf("default limit %d, want the number of cores (GOMAXPROCS) %d", got, want)
	}
	if got := cap(newSigningSlots(3)); got != 3 {
		t.Fatalf("limit 3 gave %d slots", got)
	}
}

// With every slot taken, an RS256 ID token waits (and gives up when its
// request ends), while an ES256 one is signed at once.
func TestOnlyRSASignaturesWaitForASlot(t *testing.T) {
	p := newBenchProvider(t)
	slots := newSigningSlots(1)
	strategy := newIDTokenStrategy(p.Keys, p.fositeConfig(), slots, nil)
	leave, err := slots.enter(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := strategy.GenerateIDToken(ctx, time.Hour, benchRequester(AlgES256)); err != nil {
		leave()
		t.Fatalf("ES256 with every RSA slot taken: %v", err)
	}
	if _, err := strategy.GenerateIDToken(ctx, time.Hour, benchRequester(AlgRS256)); !errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		leave()
		t.Fatalf("RS256 with every slot taken until the request ended: err = %v, want temporarily_unavailable", err)
	}

	leave()
	if _, err := strategy.GenerateIDToken(t.Context(), time.Hour, benchRequester(AlgRS256)); err != nil {
		t.Fatalf("RS256 with a free slot: %v", err)
	}
}
