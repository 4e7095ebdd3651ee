package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/consentry/consentry/storage"
)

func testIdentities(t *testing.T, s storage.Store) {
	ctx := t.Context()
	at := now()
	u := &storage.User{Subject: "sub-ann", Username: "ann", Email: "ann@example.com", EmailVerified: true, ConnectorID: "corp"}
	mustOK(t, s.CreateUser(ctx, u), "CreateUser")
	local := &storage.User{Subject: "sub-bob", Username: "bob", Email: "bob@example.com"}
	mustOK(t, s.CreateUser(ctx, local), "CreateUser local")
	got, err := s.GetUser(ctx, "sub-ann")
	mustOK(t, err, "GetUser")
	if got.ConnectorID != "corp" {
		t.Fatalf("connector = %q, want corp", got.ConnectorID)
	}
	if got, _ := s.GetUserByUsername(ctx, "bob"); got.ConnectorID != storage.LocalConnectorID {
		t.Fatalf("default connector = %q, want local", got.ConnectorID)
	}

	id := &storage.Identity{ConnectorID: "corp", UpstreamID: "uid-1", Subject: "sub-ann", Data: []byte("d1"), CreatedAt: at, LastLoginAt: at}
	mustOK(t, s.CreateIdentity(ctx, id), "CreateIdentity")
	if err := s.CreateIdentity(ctx, &storage.Identity{ConnectorID: "corp", UpstreamID: "uid-1", Subject: "sub-bob"}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second link of one upstream person: %v, want ErrAlreadyExists", err)
	}
	// The same upstream id at another connector is another person.
	mustOK(t, s.CreateIdentity(ctx, &storage.Identity{ConnectorID: "other", UpstreamID: "uid-1", Subject: "sub-bob", CreatedAt: at, LastLoginAt: at}), "CreateIdentity other")

	stored, err := s.GetIdentity(ctx, "corp", "uid-1")
	mustOK(t, err, "GetIdentity")
	if stored.Subject != "sub-ann" || string(stored.Data) != "d1" || !stored.LastLoginAt.Equal(at) {
		t.Fatalf("stored identity: %+v", stored)
	}
	if _, err := s.GetIdentity(ctx, "corp", "uid-2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown identity: %v, want ErrNotFound", err)
	}
	later := at.Add(time.Hour)
	mustOK(t, s.UpdateIdentity(ctx, "corp", "uid-1", func(i *storage.Identity) error {
		i.Data, i.LastLoginAt, i.Gone = []byte("d2"), later, true
		i.Subject = "sub-bob" // ignored
		return nil
	}), "UpdateIdentity")
	stored, err = s.GetIdentityBySubject(ctx, "sub-ann")
	mustOK(t, err, "GetIdentityBySubject")
	if stored.Subject != "sub-ann" || string(stored.Data) != "d2" || !stored.Gone || !stored.LastLoginAt.Equal(later) {
		t.Fatalf("updated identity: %+v", stored)
	}
	if err := s.UpdateIdentity(ctx, "corp", "nobody", func(*storage.Identity) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("update unknown identity: %v, want ErrNotFound", err)
	}

	if got, err := s.GetUserByVerifiedEmail(ctx, "ann@example.com"); err != nil || got.Subject != "sub-ann" {
		t.Fatalf("GetUserByVerifiedEmail = %+v, %v", got, err)
	}
	if _, err := s.GetUserByVerifiedEmail(ctx, "bob@example.com"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unverified email found a user: %v", err)
	}

	mustOK(t, s.DeleteUser(ctx, "sub-ann"), "DeleteUser")
	if _, err := s.GetIdentity(ctx, "corp", "uid-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("identity after DeleteUser: %v, want ErrNotFound", err)
	}
}
