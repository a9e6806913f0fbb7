package vault

import (
	"errors"
	"fmt"
)

// ErrInvalidUserID is wrapped by every error for a string that is not an
// idOS user id.
var ErrInvalidUserID = errors.New("vault: not a valid user id (want a version-4 UUID, 8-4-4-4-12 hex digits)")

// ValidUserID checks that s is an idOS user id: a UUID in its 36-character
// textual form (RFC 9562 §4) with version nibble 4, hex digits in either
// case. It is the check idOS applies to the KDF salt
// (/^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[a-f0-9]{4}-[a-f0-9]{12}$/i), so
// a salt one side accepts the other accepts too. The error does not repeat
// s.
func ValidUserID(s string) error {
	if err := validUUID(s); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidUserID, err)
	}
	if s[14] != '4' {
		return fmt.Errorf("%w: version nibble is not 4", ErrInvalidUserID)
	}
	return nil
}

// ValidID checks that s is a UUID in its 36-character textual form, any
// version: the form of credential, copy and grant ids.
func ValidID(s string) error {
	if err := validUUID(s); err != nil {
		return fmt.Errorf("vault: not a valid id: %w", err)
	}
	return nil
}

func validUUID(s string) error {
	if len(s) != 36 {
		return fmt.Errorf("length %d, want 36", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("no hyphen at position %d", i)
			}
		default:
			if !isHex(c) {
				return fmt.Errorf("non-hex character at position %d", i)
			}
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
