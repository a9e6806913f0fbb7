package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/keymesh/keymesh/internal/store"
)

// Account enumeration (issue 16). keymesh_initiateAuthentication needs no
// login, so its answer must not tell whether an account exists (or has a
// live passkey): for an account without one, the node answers exactly as
// for an account with one — a challenge, stored like any other, whose
// allowCredentials hold one decoy credential id. The decoy is an HMAC of
// scope and account under a random key the node keeps in its store, so
// the same question gets the same answer, like a real account's, and no
// one without the key can tell a decoy from a real id. Completing a decoy
// challenge fails like an assertion by an unknown credential.
//
// What is still visible: the decoy key is per node, so a real account's
// credential ids are the same on every node and a decoy's are not; and a
// decoy is always one id of decoyIDLen bytes. docs/operations.md says so.

const (
	nsDecoy     = "auth.decoy"
	decoyKeyKey = "key"
	decoyIDLen  = 16 // the length most platform authenticators use
)

// decoyKey is the node's decoy key, loaded or made on first use.
type decoyKey struct {
	mu  sync.Mutex
	key []byte
}

func (d *decoyKey) get(ctx context.Context, st store.Store) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.key != nil {
		return d.key, nil
	}
	k, err := st.Get(ctx, nsDecoy, decoyKeyKey)
	if errors.Is(err, store.ErrNotFound) {
		k = make([]byte, 32)
		rand.Read(k)
		err = st.Update(ctx, func(tx store.Ops) error {
			// Another process may have made one meanwhile: keep the first.
			old, err := tx.Get(ctx, nsDecoy, decoyKeyKey)
			if err == nil {
				k = old
				return nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return tx.Put(ctx, nsDecoy, decoyKeyKey, k)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("auth: decoy key: %w", err)
	}
	if len(k) != 32 {
		return nil, errors.New("auth: decoy key: corrupt")
	}
	d.key = k
	return k, nil
}

// decoyCredentialID is the credential id an account without a passkey is
// answered with. It does the same store lookup a real account's
// credential costs (State.Live), so that the answer's time does not tell
// either.
func (s *Service) decoyCredentialID(ctx context.Context, scope, account string) ([]byte, error) {
	k, err := s.decoy.get(ctx, s.st)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(scope + "/" + account))
	id := m.Sum(nil)[:decoyIDLen]
	if _, err := s.State().Live(ctx, scope, account, id); err != nil {
		return nil, err
	}
	return id, nil
}
