package provider

import (
	"errors"
	"fmt"

	"github.com/consentry/consentry/storage"
)

// ErrInvalidSpec marks a registration refused by a rule. The error's message
// is written for the person registering and carries no internal detail.
var ErrInvalidSpec = errors.New("invalid registration")

// The provider's refusals are the sentinels ErrInvalidSpec,
// storage.ErrNotFound and storage.ErrAlreadyExists, which callers test with
// errors.Is, under a plain sentence for the person acting. The helpers
// below make them; refusal carries the sentence, since the sentinels' own
// text (storage.ErrNotFound prints fosite's "not_found") would read badly.

// refusal is a plain sentence that matches the sentinels it wraps.
type refusal struct {
	msg string
	is  []error
}

func (e *refusal) Error() string   { return e.msg }
func (e *refusal) Unwrap() []error { return e.is }

// invalidf is a registration refused by a rule (ErrInvalidSpec).
func invalidf(format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), is: []error{ErrInvalidSpec}}
}

// invalid marks a rule's error (a consent registration rule) as a refused
// registration, keeping its sentence.
func invalid(err error) error {
	if err == nil {
		return nil
	}
	return &refusal{msg: err.Error(), is: []error{ErrInvalidSpec, err}}
}

// notFound is `kind "id" not found`, matching storage.ErrNotFound.
func notFound(kind, id string) error {
	return &refusal{msg: fmt.Sprintf("%s %q not found", kind, id), is: []error{storage.ErrNotFound}}
}

// specNotFound is a refused spec naming something that does not exist: it
// matches both ErrInvalidSpec and storage.ErrNotFound.
func specNotFound(kind, id string) error {
	return &refusal{msg: fmt.Sprintf("%s %q not found", kind, id), is: []error{ErrInvalidSpec, storage.ErrNotFound}}
}

// alreadyExists is `kind "id" already exists`, matching
// storage.ErrAlreadyExists.
func alreadyExists(kind, id string) error {
	return fmt.Errorf("%s %q %w", kind, id, storage.ErrAlreadyExists)
}
