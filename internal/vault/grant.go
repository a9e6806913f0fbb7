package vault

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/keymesh/keymesh/internal/codec"
)

// ErrLocked is returned when a grant is revoked before its timelock ends.
var ErrLocked = errors.New("vault: grant is timelocked")

// Grant is an access grant (idOS access_grants): the owner lets the holder
// of GranteeKey read a copy of the data DataID, stored as CopyID and sealed
// to GranteeKey. ContentHash is SHA-256 of the plaintext the owner agreed to
// share; the copy must hold exactly that. Until LockedUntil (Unix seconds,
// 0 for none) the owner cannot revoke it: the grantee may rely on it, for
// example for compliance.
type Grant struct {
	ID          string
	OwnerUserID string
	GranteeKey  PublicKey
	DataID      string
	CopyID      string
	LockedUntil int64
	ContentHash ContentHash
}

// NewGrant returns a grant with fresh random ID and CopyID. lockedUntil is
// truncated to the second; the zero time means no timelock.
func NewGrant(ownerUserID string, grantee PublicKey, dataID string, lockedUntil time.Time, h ContentHash) (*Grant, error) {
	id, err := newID()
	if err != nil {
		return nil, err
	}
	copyID, err := newID()
	if err != nil {
		return nil, err
	}
	g := &Grant{ID: id, OwnerUserID: ownerUserID, GranteeKey: grantee, DataID: dataID, CopyID: copyID, ContentHash: h}
	if !lockedUntil.IsZero() {
		g.LockedUntil = lockedUntil.Unix()
	}
	if err := g.check(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Grant) check() error {
	if err := ValidID(g.ID); err != nil {
		return fmt.Errorf("vault: grant id: %w", err)
	}
	if err := ValidUserID(g.OwnerUserID); err != nil {
		return fmt.Errorf("vault: grant owner: %w", err)
	}
	if err := ValidID(g.DataID); err != nil {
		return fmt.Errorf("vault: grant data id: %w", err)
	}
	if err := ValidID(g.CopyID); err != nil {
		return fmt.Errorf("vault: grant copy id: %w", err)
	}
	if g.CopyID == g.DataID {
		return errors.New("vault: grant copy id equals its data id")
	}
	if g.LockedUntil < 0 {
		return errors.New("vault: grant timelock is negative")
	}
	if g.ContentHash.IsZero() {
		return errors.New("vault: grant has no content hash")
	}
	return nil
}

// Revocable returns nil if the grant may be revoked at now, and an error
// wrapping ErrLocked while now is before LockedUntil.
func (g *Grant) Revocable(now time.Time) error {
	if now.Unix() < g.LockedUntil {
		return fmt.Errorf("%w until %s", ErrLocked, time.Unix(g.LockedUntil, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// MakeCopy makes the grantee's copy of original: it opens original with
// the owner's key, refuses with ErrContentHash unless the plaintext's
// SHA-256 is g.ContentHash, and seals the plaintext to g.GranteeKey under a
// fresh ephemeral key. The plaintext is erased before MakeCopy returns.
func MakeCopy(owner *PrivateKey, original Sealed, g *Grant) (Sealed, error) {
	pt, err := original.Open(owner)
	if err != nil {
		return Sealed{}, fmt.Errorf("vault: grant copy: %w", err)
	}
	defer clear(pt)
	if err := checkHash(pt, g.ContentHash); err != nil {
		return Sealed{}, fmt.Errorf("vault: grant copy: %w", err)
	}
	s, err := SealTo(g.GranteeKey, pt)
	if err != nil {
		return Sealed{}, fmt.Errorf("vault: grant copy: %w", err)
	}
	return s, nil
}

// OpenCopy is the grantee's side: it opens the copy and refuses it with
// ErrContentHash unless it holds the plaintext the grant names.
func OpenCopy(grantee *PrivateKey, c Sealed, g *Grant) ([]byte, error) {
	pt, err := c.Open(grantee)
	if err != nil {
		return nil, err
	}
	if err := checkHash(pt, g.ContentHash); err != nil {
		clear(pt)
		return nil, err
	}
	return pt, nil
}

const grantVersion = 1

// MarshalBinary encodes the grant for replication:
//
//	'G' ‖ version(1)=1 ‖ str(id) ‖ str(owner) ‖ grantee key(32) ‖
//	str(data id) ‖ str(copy id) ‖ locked until(8) ‖ content hash(32)
func (g *Grant) MarshalBinary() ([]byte, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	var e codec.Writer
	e.Grow(2 + 4*4 + 36*4 + 32 + 8 + 32)
	e.U8(typeGrant)
	e.U8(grantVersion)
	e.String(g.ID)
	e.String(g.OwnerUserID)
	e.Fixed(g.GranteeKey[:])
	e.String(g.DataID)
	e.String(g.CopyID)
	e.U64(uint64(g.LockedUntil))
	e.Fixed(g.ContentHash[:])
	return e.Bytes(), nil
}

// UnmarshalBinary decodes what MarshalBinary produced, strictly. On error g
// is unchanged.
func (g *Grant) UnmarshalBinary(b []byte) error {
	d := codec.NewReader(b, errGrantEncoding)
	readHeader(&d, typeGrant, grantVersion, "grant")
	var out Grant
	out.ID = string(d.Var(36, "id"))
	out.OwnerUserID = string(d.Var(36, "owner"))
	copy(out.GranteeKey[:], d.Bytes(KeySize, "grantee key"))
	out.DataID = string(d.Var(36, "data id"))
	out.CopyID = string(d.Var(36, "copy id"))
	lu := d.U64("locked until")
	copy(out.ContentHash[:], d.Bytes(len(out.ContentHash), "content hash"))
	if err := d.Done(); err != nil {
		return err
	}
	if lu > math.MaxInt64 {
		return errors.New("vault: grant: timelock out of range")
	}
	out.LockedUntil = int64(lu)
	if err := out.check(); err != nil {
		return err
	}
	*g = out
	return nil
}
