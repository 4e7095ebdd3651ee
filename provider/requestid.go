package provider

import (
	"fmt"

	"github.com/google/uuid"
)

// NewRequestID returns the request id of a new token family: a version 7
// UUID, which sorts by creation time. fosite's own ids are random (version
// 4). Every token table and the grants index request_id, and a random key
// puts each insert, and each row the collector deletes, on its own leaf
// page of that index; in creation order they share the last few pages.
// Each page a commit changes is one more page written to the WAL.
//
// Set it where a family begins: the authorization response, a client
// credentials grant, a device authorization. The refresh and code grants
// carry the family's id over.
func NewRequestID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("generate request id: %w", err)
	}
	return id.String(), nil
}
