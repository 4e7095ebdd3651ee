package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	fositestorage "github.com/ory/fosite/storage"

	"github.com/consentry/consentry/provider/consent"
	"github.com/consentry/consentry/storage"
)

// eventForBasis is the audit event a grant on each basis records.
var eventForBasis = map[string]string{
	storage.BasisConsent:    storage.EventConsentGiven,
	storage.BasisRemembered: storage.EventRememberedConsent,
	storage.BasisAgreement:  storage.EventAgreementUsed,
}

// GrantRequest is one grant to record: a user allowed a client scopes, on
// the basis the consent policy decided.
type GrantRequest struct {
	Subject  string
	ClientID string
	// RequestID is fosite's request id, which the flow's tokens carry: they
	// are traced to the grant by it and revoked with it.
	RequestID string
	// Decision is the policy's decision the grant follows: the grant's basis
	// is Decision.GrantBasis().
	Decision consent.Decision
	// Scopes are what is granted: the decision's scopes, or those the user
	// kept on the consent screen.
	Scopes []string
	// RememberUntil, when set, lets the consent cover later requests.
	RememberUntil *time.Time
	// IPAddress and UserAgent are where the grant came from.
	IPAddress, UserAgent string
	// DeviceID, when set, is the device authorization the grant approves:
	// in the same transaction it is marked approved for Subject with Scopes
	// (each of which it must have requested) and AuthTime, the user's
	// sign-in time. ClientID and RequestID are then the authorization's.
	DeviceID string
	AuthTime time.Time
}

// Grant records a grant: the grant itself, its audit event and, for the
// device flow, the approval of the device authorization, in one
// transaction, so that the audit log never misses a grant that tokens were
// issued under. A device authorization that is no longer pending is
// storage.ErrNotFound.
func (p *Provider) Grant(ctx context.Context, req GrantRequest) (*storage.Grant, error) {
	if req.Subject == "" {
		return nil, errors.New("record grant: no user")
	}
	id, err := randomToken(32)
	if err != nil {
		return nil, err
	}
	now := p.Now()
	g := &storage.Grant{
		ID: "grt_" + id, Subject: req.Subject, ClientID: req.ClientID, RequestID: req.RequestID, Scopes: req.Scopes,
		CreatedAt: now, RememberUntil: req.RememberUntil, IPAddress: req.IPAddress, UserAgent: req.UserAgent,
	}
	g.Basis, g.AgreementID, g.RememberedFrom = req.Decision.GrantBasis()
	err = inTx(ctx, p.Store, func(ctx context.Context) error {
		if req.DeviceID != "" {
			if err := p.approveDevice(ctx, req, g, now); err != nil {
				return err
			}
		}
		if err := p.Store.CreateGrant(ctx, g); err != nil {
			return fmt.Errorf("create grant: %w", err)
		}
		detail := ""
		if g.RememberUntil != nil {
			detail = "remembered until " + g.RememberUntil.UTC().Format(time.RFC3339)
		}
		return p.Store.AppendAuditEvent(ctx, &storage.AuditEvent{
			Time: g.CreatedAt, Type: eventForBasis[g.Basis], Actor: storage.ActorUser, Subject: g.Subject,
			ClientID: g.ClientID, Scopes: g.Scopes, Basis: g.Basis, GrantID: g.ID, AgreementID: g.AgreementID,
			IPAddress: g.IPAddress, UserAgent: g.UserAgent, Detail: detail,
		})
	})
	if err != nil {
		return nil, err
	}
	p.observer().GrantIssued(g.Basis)
	return g, nil
}

// ConsentDenied records that the user denied a client on the consent screen.
func (p *Provider) ConsentDenied(ctx context.Context, subject, clientID string, offered []string, ip, userAgent string) {
	p.Audit(ctx, &storage.AuditEvent{Type: storage.EventConsentDenied, Actor: storage.ActorUser, Subject: subject,
		ClientID: clientID, Scopes: offered, IPAddress: ip, UserAgent: userAgent})
}

// inTx runs fn with a context carrying a new transaction of store (a
// savepoint when ctx already carries one), and commits it when fn succeeds,
// so that a change and its audit event are stored together. It is the
// provider's one way into a transaction.
func inTx(ctx context.Context, store storage.Store, fn func(ctx context.Context) error) error {
	txCtx, err := fositestorage.MaybeBeginTx(ctx, store)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(txCtx); err != nil {
		if rbErr := fositestorage.MaybeRollbackTx(txCtx, store); rbErr != nil {
			return errors.Join(err, fmt.Errorf("roll back: %w", rbErr))
		}
		return err
	}
	if err := fositestorage.MaybeCommitTx(txCtx, store); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// ConnectedApp is one client that holds a grant from a user, as the
// "connected apps" page shows it.
type ConnectedApp struct {
	Client *storage.Client
	// Scopes are everything the user's unrevoked grants allow the client.
	Scopes []string
	// Offline reports whether the client has offline access.
	Offline bool
	// Agreement is set when access rests on a standing agreement.
	Agreement *storage.Agreement
	// ByConsent reports whether the user consented (now or remembered).
	ByConsent    bool
	FirstGranted time.Time
	LastUsed     *time.Time
	// CanRemove is false when an agreement forbids the user removing it.
	CanRemove bool
}

// ConnectedApps lists the clients holding an unrevoked grant from subject,
// most recently granted first.
func (p *Provider) ConnectedApps(ctx context.Context, subject string) ([]ConnectedApp, error) {
	grants, err := p.Store.ListGrants(ctx, storage.GrantFilter{Subject: subject, UnrevokedOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	byClient := map[string]*ConnectedApp{}
	var order []string
	now := p.Now()
	for _, g := range grants {
		app, ok := byClient[g.ClientID]
		if !ok {
			client, err := p.Store.GetStoredClient(ctx, g.ClientID)
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("load client %q: %w", g.ClientID, err)
			}
			app = &ConnectedApp{Client: client, CanRemove: true, FirstGranted: g.CreatedAt}
			byClient[g.ClientID] = app
			order = append(order, g.ClientID)
		}
		for _, s := range g.Scopes {
			if !slices.Contains(app.Scopes, s) {
				app.Scopes = append(app.Scopes, s)
			}
		}
		app.Offline = app.Offline || slices.Contains(g.Scopes, ScopeOfflineAccess)
		if g.CreatedAt.Before(app.FirstGranted) {
			app.FirstGranted = g.CreatedAt
		}
		if g.LastUsedAt != nil && (app.LastUsed == nil || g.LastUsedAt.After(*app.LastUsed)) {
			app.LastUsed = g.LastUsedAt
		}
		if g.Basis != storage.BasisAgreement {
			app.ByConsent = true
			continue
		}
		a, err := p.Store.GetAgreement(ctx, g.AgreementID)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load agreement %q: %w", g.AgreementID, err)
		}
		if consent.AgreementActive(*a, now) {
			app.Agreement = a
			app.CanRemove = app.CanRemove && a.UserMayRemove
		}
	}
	apps := make([]ConnectedApp, 0, len(order))
	for _, id := range order {
		apps = append(apps, *byClient[id])
	}
	sort.SliceStable(apps, func(i, j int) bool { return apps[i].FirstGranted.After(apps[j].FirstGranted) })
	return apps, nil
}

// ErrRemovalForbidden is returned when a standing agreement does not let the
// user remove a client's access.
var ErrRemovalForbidden = errors.New("the agreement behind this access does not let the user remove it")

// RemoveAccess is the user's "Remove access": every grant the user gave the
// client is revoked with every token issued under it, and the agreements
// that let the client in without asking stop doing so for this user (a
// per-user agreement is revoked; the user opts out of an all-users one).
func (p *Provider) RemoveAccess(ctx context.Context, subject, clientID, ip, userAgent string) error {
	apps, err := p.ConnectedApps(ctx, subject)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(apps, func(a ConnectedApp) bool { return a.Client.ID == clientID })
	if i < 0 {
		return fmt.Errorf("client %q holds no grant: %w", clientID, storage.ErrNotFound)
	}
	if !apps[i].CanRemove {
		return ErrRemovalForbidden
	}
	agreements, err := p.Store.ListAgreements(ctx, storage.AgreementFilter{ClientID: clientID, ForSubject: subject})
	if err != nil {
		return fmt.Errorf("list agreements: %w", err)
	}
	now := p.Now()
	return inTx(ctx, p.Store, func(ctx context.Context) error {
		n, err := p.Store.RevokeGrants(ctx, subject, clientID, now)
		if err != nil {
			return fmt.Errorf("revoke grants: %w", err)
		}
		if err := p.Store.AppendAuditEvent(ctx, &storage.AuditEvent{
			Time: now, Type: storage.EventGrantRevoked, Actor: storage.ActorUser, Subject: subject, ClientID: clientID,
			Scopes: apps[i].Scopes, IPAddress: ip, UserAgent: userAgent, Detail: fmt.Sprintf("removed on the connected apps page (%d grants)", n),
		}); err != nil {
			return err
		}
		for _, a := range agreements {
			if !consent.AgreementActive(a, now) || !a.UserMayRemove {
				continue
			}
			if a.AllUsers {
				err = p.Store.OptOutOfAgreement(ctx, a.ID, subject, now)
			} else {
				err = p.Store.RevokeAgreement(ctx, a.ID, now)
			}
			if err != nil {
				return fmt.Errorf("end agreement %q for the user: %w", a.ID, err)
			}
			if err := p.Store.AppendAuditEvent(ctx, &storage.AuditEvent{
				Time: now, Type: storage.EventAgreementRemovedUser, Actor: storage.ActorUser, Subject: subject, ClientID: clientID,
				Scopes: a.Scopes, AgreementID: a.ID, IPAddress: ip, UserAgent: userAgent, Detail: a.Reference,
			}); err != nil {
				return err
			}
		}
		return nil
	})
}
