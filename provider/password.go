package provider

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

// DefaultPasswordCost is bcrypt's work factor for user passwords: slow on
// purpose, because people choose guessable passwords.
const DefaultPasswordCost = 12

// maxPasswordBytes is bcrypt's input limit; longer input would be truncated
// silently, so it is refused instead.
const maxPasswordBytes = 72

// MinPasswordLength is the shortest password accepted for a new user.
const MinPasswordLength = 8

// HashPassword returns a bcrypt hash of a user's password; cost 0 means
// DefaultPasswordCost.
func HashPassword(password string, cost int) ([]byte, error) {
	if len(password) < MinPasswordLength {
		return nil, fmt.Errorf("password must have at least %d characters", MinPasswordLength)
	}
	if len(password) > maxPasswordBytes {
		return nil, fmt.Errorf("password must have at most %d bytes", maxPasswordBytes)
	}
	if cost == 0 {
		cost = DefaultPasswordCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// dummyPasswordHash is compared against when the username is unknown, so
// that a wrong username takes as long as a wrong password.
var dummyPasswordHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("consentry-timing-equaliser"), DefaultPasswordCost)
	if err != nil {
		panic(fmt.Sprintf("bcrypt: %v", err)) // only fails for an invalid cost
	}
	return h
})

// CheckPassword reports whether password matches hash. A nil hash (unknown
// or disabled user) still costs one bcrypt comparison.
func CheckPassword(hash []byte, password string) bool {
	if len(password) > maxPasswordBytes {
		return false
	}
	if hash == nil {
		_ = bcrypt.CompareHashAndPassword(dummyPasswordHash(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// Passwords checks and hashes passwords for the server with at most a few
// bcrypt computations at once. One costs about a quarter second of a core
// at DefaultPasswordCost: unbounded, a flood of sign-ins would take every
// core from the token endpoint. Those past the limit wait for a slot, and
// give up when their request ends. The package's CheckPassword and
// HashPassword remain for the command line, which hashes one at a time.
type Passwords struct {
	slots    chan struct{}
	waiting  atomic.Int64
	computed atomic.Int64
	// compare and generate are bcrypt's; tests replace them.
	compare  func(hash []byte, password string) bool
	generate func(password string, cost int) ([]byte, error)
}

// NewPasswords returns a Passwords running at most limit bcrypt
// computations at once; 0 means half the cores (GOMAXPROCS), at least one,
// so that the rest stay with token requests.
func NewPasswords(limit int) *Passwords {
	if limit <= 0 {
		limit = max(1, runtime.GOMAXPROCS(0)/2)
	}
	return &Passwords{slots: make(chan struct{}, limit), compare: CheckPassword, generate: HashPassword}
}

// Check reports whether password matches hash, as CheckPassword does (a nil
// hash still costs one comparison). The error is ctx's when it ended while
// waiting for a slot.
func (p *Passwords) Check(ctx context.Context, hash []byte, password string) (bool, error) {
	leave, err := p.enter(ctx)
	if err != nil {
		return false, err
	}
	defer leave()
	return p.compare(hash, password), nil
}

// Hash returns a bcrypt hash of password, as HashPassword does, waiting for
// a slot like Check.
func (p *Passwords) Hash(ctx context.Context, password string, cost int) ([]byte, error) {
	leave, err := p.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	return p.generate(password, cost)
}

// Computed is how many checks and hashes ran: a sign-in refused before its
// password was looked at does not count.
func (p *Passwords) Computed() int64 { return p.computed.Load() }

// Waiting is how many checks and hashes wait for a slot now.
func (p *Passwords) Waiting() int64 { return p.waiting.Load() }

func (p *Passwords) enter(ctx context.Context) (leave func(), err error) {
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	select {
	case p.slots <- struct{}{}:
		p.computed.Add(1)
		return func() { <-p.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to check a password: %w", ctx.Err())
	}
}
