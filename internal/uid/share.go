package uid

import (
	"context"
	"errors"
	"fmt"

	"github.com/keymesh/keymesh/internal/oprf"
	"github.com/keymesh/keymesh/internal/store"
)

// errStopped is share's error once the service stopped.
var errStopped = errors.New("uid: the service has stopped")

// errKeyExists is save's error for a scope that has a key on this node.
var errKeyExists = errors.New("uid: the scope has a key already")

// share returns this node's share of scope's key, or nil if it holds none.
func (s *Service) share(ctx context.Context, scope string) (*oprf.KeyShare, error) {
	s.mu.Lock()
	sh, stopped := s.shares[scope], s.stopped
	s.mu.Unlock()
	if stopped {
		return nil, errStopped
	}
	if sh != nil {
		return sh, nil
	}
	b, err := s.st.Get(ctx, nsShare, scope)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("uid: store: %w", err)
	}
	if s.sealer != nil {
		if b, err = s.sealer.Unseal(b, sealLabel(scope)); err != nil {
			return nil, fmt.Errorf("uid: unseal the share of a scope: %w", err)
		}
	}
	sh, err = oprf.ParseKeyShare(b)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("uid: stored share: %w", err)
	}
	if int(sh.ID()) != int(s.self) {
		return nil, fmt.Errorf("uid: stored share is node %d's, not this node's", sh.ID())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		sh.Zero()
		return nil, errStopped
	}
	if c := s.shares[scope]; c != nil {
		sh.Zero()
		return c, nil
	}
	s.shares[scope] = sh
	return sh, nil
}

// save stores sh, sealed, as this node's share of scope's key, unless the
// node holds one already (errKeyExists): read and write in one
// transaction, so that no share is ever replaced.
func (s *Service) save(ctx context.Context, scope string, sh *oprf.KeyShare) error {
	raw, err := sh.MarshalBinary()
	if err != nil {
		return fmt.Errorf("uid: encode share: %w", err)
	}
	val := raw
	if s.sealer != nil {
		val, err = s.sealer.Seal(raw, sealLabel(scope))
		clear(raw)
		if err != nil {
			return fmt.Errorf("uid: seal share: %w", err)
		}
	}
	err = s.st.Update(ctx, func(tx store.Ops) error {
		switch _, err := tx.Get(ctx, nsShare, scope); {
		case err == nil:
			return errKeyExists
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return tx.Put(ctx, nsShare, scope, val)
	})
	if s.sealer == nil {
		clear(val)
	}
	if err != nil {
		if errors.Is(err, errKeyExists) {
			return err
		}
		return fmt.Errorf("uid: store share: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		sh.Zero()
		return nil
	}
	s.shares[scope] = sh
	return nil
}

// errBusy is lockScope's error while a key generation for the scope runs
// on this node.
var errBusy = errors.New("uid: a key generation for the scope is running")

// running reports whether a key generation for scope runs on this node.
func (s *Service) running(scope string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight[scope]
}

// lockScope marks a key generation for scope as running here and then
// checks, under that mark, that this node holds no key for scope: so a
// node takes part in at most one key generation per scope at a time, and
// in none once it stored a share. Every node of a completed run therefore
// stores that run's share (save cannot find another), and no two runs
// both complete (each needs all n nodes). release undoes the mark.
func (s *Service) lockScope(ctx context.Context, scope string) (release func(), err error) {
	s.mu.Lock()
	if s.inFlight[scope] {
		s.mu.Unlock()
		return nil, errBusy
	}
	s.inFlight[scope] = true
	s.mu.Unlock()
	release = func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.inFlight, scope)
	}
	sh, err := s.share(ctx, scope)
	if err == nil && sh != nil {
		err = errKeyExists
	}
	if err != nil {
		release()
		return nil, err
	}
	return release, nil
}
