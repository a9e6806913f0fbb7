package api

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/ethereum/go-ethereum/common"
)

// OperationTag is the domain-separation tag of OperationHash. It names the
// hash's purpose and version, so an operation hash can never be mistaken for
// a digest signed by a wallet key, a transaction hash or another keymesh hash.
const OperationTag = "keymesh/wallet/operation/v1"

// OperationHash is auth.Operation.Hash for a wallet method (internal/auth): what an approval
// (a session-key signature, a passkey assertion, a developer signature)
// commits to. It is
//
//	SHA-256(OperationTag ‖ len(method) (2 bytes, big-endian) ‖ method ‖ address (20) ‖ digest (32))
//
// where method is the canonical method name (api.Method…, never an alias),
// address the signing account's address and digest the 32 bytes the
// threshold key will sign: for personal_sign accounts.TextHash(data)
// (EIP-191), for eth_signTypedData_v4 the EIP-712 hash
// keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message)), for
// eth_signTransaction the transaction's signing hash
// (types.LatestSignerForChainID(chainId).Hash(tx)), for keymesh_signDigest
// the digest itself. Methods that sign nothing (keymesh_createAccount,
// eth_requestAccounts, eth_accounts) use the zero address and the zero
// digest: their approval binds scope and account through auth.Operation's
// other fields.
//
// Every node computes it from the request's params itself (internal/wallet's
// Prepare); the SDK computes the same to ask for approval: this one function
// is the definition both use. Because the signed digest is
// inside the hash, an approval for one message, typed data or transaction
// authorises exactly that one.
func OperationHash(method string, address common.Address, digest [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(OperationTag))
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(method)))
	h.Write(l[:])
	h.Write([]byte(method))
	h.Write(address[:])
	h.Write(digest[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}
