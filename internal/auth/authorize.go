package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// party is who an approval speaks for.
type party uint8

const (
	partyUser party = 1 << iota
	partyDeveloper
)

// Authorize decides whether proofs (the X-Keymesh-Auth header, see Proofs)
// approve op, against this node's own copy of the scope and account
// (DESIGN.md, "Authorization on the hot path"). Every node that acts on
// op calls it itself.
//
// It uses the approvals bound to op (same method and hash), checks that
// they are for op's scope and account, unexpired (and at most
// MaxApprovalTTL ahead), and correctly signed: by a session key whose
// session.create record one of the account's unrevoked credentials
// signed, by the user's plain-key credential, by a passkey assertion
// whose challenge commits to the approval, or by a developer key of the
// scope. The account's mode (State.AccountMode: the scope's mode when the
// account was registered) says whose approval is needed: the user's, the
// developer's, or both (hybrid).
//
// Finally it records each approval's nonce. A nonce seen before is a
// replay, unless with the same op.Hash and op.Request (the gateway's retry
// of the same request with another signer set). Nonces are recorded only
// once everything else has passed, so a refused request uses none.
//
// Every denial is an *api.Error with one of the api.CodeAuth… codes;
// other errors are internal (the store failed).
func (s *Service) Authorize(ctx context.Context, op Operation, proofs string) (Principal, error) {
	if proofs == "" {
		return Principal{}, api.Errorf(api.CodeAuthMissing, "no approval: send the %s header", api.ProofsHeader)
	}
	ps, err := ParseProofs(proofs)
	if err != nil {
		return Principal{}, api.Errorf(api.CodeAuthBadProof, "%v", err)
	}
	var mine []*parsed
	for _, p := range ps.Approvals {
		pp, err := parseProof(&p)
		if err != nil {
			return Principal{}, api.Errorf(api.CodeAuthBadProof, "%v", err)
		}
		if pp.approval.Hash == op.Hash && pp.approval.Method == op.Method {
			mine = append(mine, pp)
		}
	}
	if len(mine) == 0 {
		return Principal{}, api.Errorf(api.CodeAuthWrongOperation, "no approval is for this operation (%s with this hash)", op.Method)
	}
	account := op.Account
	for _, p := range mine {
		a := p.approval
		if a.Scope != op.Scope {
			return Principal{}, api.Errorf(api.CodeAuthWrongScope, "approval is for scope %s, not %s", a.Scope, op.Scope)
		}
		if account == "" {
			account = a.Account
		}
		if a.Account != account {
			return Principal{}, api.Errorf(api.CodeAuthWrongScope, "approval is for account %s, not %s", a.Account, account)
		}
	}
	if account == "" {
		return Principal{}, api.Errorf(api.CodeAuthWrongScope, "approval names no account")
	}
	st := s.State()
	// The scope's config, the account's mode (the one it was registered
	// under, not the scope's current one: a scope.update does not take
	// accounts over) and its credentials and sessions, as of the scope's
	// current epoch: remembered until the next record applied to the
	// scope (cache.go).
	d, err := s.derivedState(ctx, st, op.Scope, account)
	if err != nil {
		return Principal{}, apiError(err)
	}
	mode := d.mode
	now := s.now()
	var got party
	for _, p := range mine {
		who, err := s.verifyApproval(ctx, st, d, account, p, now)
		if err != nil {
			return Principal{}, apiError(err)
		}
		got |= who
	}
	var need party
	switch mode {
	case record.ModeUser:
		need = partyUser
	case record.ModeDeveloper:
		need = partyDeveloper
	case record.ModeHybrid:
		need = partyUser | partyDeveloper
	}
	if got&need != need {
		missing := "the user's"
		if need&^got == partyDeveloper {
			missing = "the developer's"
		}
		return Principal{}, api.Errorf(api.CodeAuthIncomplete, "account mode %s also needs %s approval", mode, missing)
	}
	// An account beyond its scope's quota (accountquota.go) is refused
	// alike on every node.
	if err := s.withinAccountQuota(ctx, st, d); err != nil {
		return Principal{}, apiError(err)
	}
	if err := s.useNonces(ctx, op, mine); err != nil {
		return Principal{}, err
	}
	return Principal{Scope: op.Scope, Account: account}, nil
}

func (s *Service) verifyApproval(ctx context.Context, st State, d *derived, account string, p *parsed, now time.Time) (party, error) {
	seq, cfg, lookup := d.seq, d.cfg, d.credential(st)
	a := p.approval
	exp := time.Unix(a.Expiry, 0)
	if !now.Before(exp) {
		return 0, deny(api.CodeAuthExpired, "approval expired")
	}
	if exp.Sub(now) > MaxApprovalTTL {
		return 0, deny(api.CodeAuthBadProof, "approval expiry is more than %s ahead", MaxApprovalTTL)
	}
	msg := a.SigningMessage()
	switch {
	case p.developer != nil:
		if !cfg.HasDevKey(*p.developer) {
			return 0, deny(api.CodeAuthBadProof, "key is not a developer key of scope %s", a.Scope)
		}
		if p.developer.Verify(msg, p.sig) != nil {
			return 0, deny(api.CodeAuthBadProof, "developer signature does not verify (signed over another payload?)")
		}
		return partyDeveloper, nil
	case p.key != nil:
		if _, err := st.verifyProof(ctx, cfg, a.Scope, account, CredentialProof{Signer: p.key, Sig: p.sig}, msg, lookup); err != nil {
			return 0, err
		}
		return partyUser, nil
	case p.passkey != nil:
		if _, err := st.verifyProof(ctx, cfg, a.Scope, account, CredentialProof{WebAuthn: p.passkey}, msg, lookup); err != nil {
			return 0, err
		}
		return partyUser, nil
	case p.session != nil:
		sb, err := record.DecodeSessionCreate(p.session.Body)
		if err != nil {
			return 0, deny(api.CodeAuthBadProof, "session record: %v", err)
		}
		if sb.Scope != a.Scope || sb.Account != account {
			return 0, deny(api.CodeAuthWrongScope, "session is for account %s of scope %s", sb.Account, sb.Scope)
		}
		// The session record's own proof: one of the account's unrevoked
		// credentials authorised this session key. The signature check is
		// remembered (per scope config); the revocation check is not.
		key := sessionKey(seq, p.session)
		if credID, ok := s.verified.get(key); ok {
			if _, err := lookup(ctx, sb.Scope, sb.Account, credID); err != nil {
				return 0, err
			}
		} else {
			c, err := st.credentialProof(ctx, p.session, cfg, sb.Scope, sb.Account, lookup)
			if err != nil {
				return 0, err
			}
			s.verified.put(key, c.ID)
		}
		if err := checkSessionLifetime(sb, cfg); err != nil {
			return 0, err
		}
		if !now.Before(time.Unix(sb.Expiry, 0)) {
			return 0, deny(api.CodeAuthExpired, "session expired")
		}
		if time.Unix(sb.Issued, 0).Sub(now) > MaxClockSkew {
			return 0, deny(api.CodeAuthBadProof, "session issued in the future")
		}
		if revoked, err := d.sessionRevoked(ctx, st, sb.Key.ID()); err != nil {
			return 0, err
		} else if revoked {
			return 0, deny(api.CodeAuthRevoked, "session key was revoked")
		}
		if sb.Key.Verify(msg, p.sig) != nil {
			return 0, deny(api.CodeAuthBadProof, "session signature does not verify (signed over another payload?)")
		}
		return partyUser, nil
	}
	return 0, deny(api.CodeAuthBadProof, "approval has no signature")
}

// useNonces records the approvals' nonces in one transaction, refusing a
// nonce already used by another operation or request.
func (s *Service) useNonces(ctx context.Context, op Operation, ps []*parsed) error {
	var replay bool
	err := s.st.Update(ctx, func(tx store.Ops) error {
		replay = false
		for _, p := range ps {
			a := p.approval
			key := a.Scope + "/" + hex.EncodeToString(a.Nonce[:])
			val := make([]byte, 0, 56)
			val = append(val, op.Hash[:]...)
			val = append(val, op.Request[:]...)
			val = binary.BigEndian.AppendUint64(val, uint64(a.Expiry))
			old, ok, err := get(ctx, tx, nsNonce, key)
			if err != nil {
				return err
			}
			if ok {
				if len(old) < 48 || !bytes.Equal(old[:48], val[:48]) {
					replay = true
					return errReplay
				}
				continue
			}
			if err := tx.Put(ctx, nsNonce, key, val); err != nil {
				return err
			}
		}
		return nil
	})
	if replay {
		return api.Errorf(api.CodeAuthReplay, "approval nonce already used by another request")
	}
	return err
}

var errReplay = errors.New("auth: replayed nonce")

// sessionKey identifies a session record verified under one scope config.
func sessionKey(seq uint64, r *record.Record) [32]byte {
	h := sha256.New()
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	h.Write(r.Marshal())
	return [32]byte(h.Sum(nil))
}

// maxVerified bounds the verifiedSessions cache.
const maxVerified = 4096

// verifiedSessions remembers which session records' proofs verified, and
// with which credential, so that the hot path does not re-verify a passkey
// assertion for every approval. It holds only public data. When full it
// is emptied (a cheap bound; a miss only costs a verification).
type verifiedSessions struct {
	mu sync.Mutex
	m  map[[32]byte][]byte
}

func (v *verifiedSessions) get(k [32]byte) ([]byte, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id, ok := v.m[k]
	return id, ok
}

func (v *verifiedSessions) put(k [32]byte, credID []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[[32]byte][]byte)
	}
	v.m[k] = credID
}
