package provider_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/consentry/consentry/provider"
)

// Ids made within the same millisecond must still sort in the order they
// were made, or the request_id indexes get random inserts again.
func TestRequestIDsSortInCreationOrder(t *testing.T) {
	prev := ""
	for i := range 10000 {
		id, err := provider.NewRequestID()
		if err != nil {
			t.Fatal(err)
		}
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("id %d: %q is not an RFC 9562 version 7 UUID (err %v)", i, id, err)
		}
		if id <= prev {
			t.Fatalf("id %d: %q sorts before or equals the one made before it, %q", i, id, prev)
		}
		prev = id
	}
}
