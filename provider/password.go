package provider

import (
	"fmt"
	"sync"

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
