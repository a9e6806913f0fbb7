package api

// Wallet methods (internal/wallet). The eth_ and personal_ names are
// EIP-1193's (https://eips.ethereum.org/EIPS/eip-1193) with the parameter
// shapes Ethereum providers use, so viem and ethers can use a node as their
// provider; keymesh_createAccount and keymesh_signDigest are keymesh's own.
//
// Every wallet method needs approval: the request carries proofs in the
// X-Keymesh-Auth header (ProofsHeader; format: Proofs), bound to the operation hash
// that OperationHash defines for the method, the account's address and
// the digest to be signed. Each signing node recomputes that hash from the
// params itself, so proofs for one operation never authorise another.
const (
	// MethodCreateAccount creates a new wallet key for an account by
	// distributed key generation across all n nodes. Params:
	// CreateAccountParams (object, or an array holding it; may be omitted,
	// then the account is the one the proofs speak for). Result:
	// CreateAccountResult, returned once all n nodes hold their share.
	MethodCreateAccount = "keymesh_createAccount"
	// MethodRequestAccounts is EIP-1102/EIP-1193 eth_requestAccounts (no
	// params): the addresses of the account the proofs speak for, creating
	// its first wallet key if it has none. It is approved as
	// keymesh_createAccount (same method name and operation hash in the
	// approval). Result: []string of 0x addresses.
	MethodRequestAccounts = "eth_requestAccounts"
	// MethodAccounts is eth_accounts (no params): the addresses of the
	// account the proofs speak for, oldest first. Result: []string.
	MethodAccounts = "eth_accounts"
	// MethodPersonalSign is personal_sign (EIP-191 version 0x45): params
	// [data, address], data a 0x-prefixed hex string (or, as MetaMask
	// accepts, plain UTF-8 text). Result: the 65-byte signature r ‖ s ‖ v,
	// v ∈ {27, 28}, as 0x hex.
	MethodPersonalSign = "personal_sign"
	// MethodSignTypedDataV4 is eth_signTypedData_v4 (EIP-712): params
	// [address, typedData], typedData as a JSON object or a string holding
	// one. Result: 0x hex r ‖ s ‖ v, v ∈ {27, 28}.
	MethodSignTypedDataV4 = "eth_signTypedData_v4"
	// MethodSignTransaction is eth_signTransaction: params [tx], a
	// TransactionRequest. Result: the signed transaction's canonical
	// encoding (types.Transaction.MarshalBinary: RLP for legacy, type byte ‖
	// RLP for EIP-2930 and EIP-1559) as 0x hex, ready for
	// eth_sendRawTransaction.
	MethodSignTransaction = "eth_signTransaction"
	// MethodSignDigest signs a raw 32-byte digest: params SignDigestParams.
	// Only where the account's scope allows raw digests (Scope.AllowRawDigest;
	// CodeRejected otherwise): a raw digest can be a transaction's. Result:
	// SignatureResult.
	MethodSignDigest = "keymesh_signDigest"
)

// Limits of wallet requests, checked before anything is forwarded to peers.
const (
	MaxAccountIDLen    = 256       // scope and account ids, bytes
	MaxMessageBytes    = 64 << 10  // personal_sign data, decoded
	MaxTypedDataBytes  = 64 << 10  // eth_signTypedData_v4 typed data, JSON
	MaxTxDataBytes     = 128 << 10 // eth_signTransaction input data, decoded
	MaxAccessListItems = 1024      // eth_signTransaction access list entries (addresses + keys)
)

// CreateAccountParams are keymesh_createAccount's params. Both fields may be
// left empty; the account is then the one the proofs speak for.
type CreateAccountParams struct {
	Scope   string `json:"scope,omitempty"`
	Account string `json:"account,omitempty"`
}

// CreateAccountResult is keymesh_createAccount's result.
type CreateAccountResult struct {
	// Address is the new key's Ethereum address, 0x hex (EIP-55 checksum).
	Address string `json:"address"`
	// PublicKey is the compressed SEC1 public key, 0x hex.
	PublicKey string `json:"publicKey"`
	Scope     string `json:"scope"`
	Account   string `json:"account"`
	Threshold int    `json:"threshold"` // signers needed
	N         int    `json:"n"`         // nodes holding a share
}

// SignDigestParams are keymesh_signDigest's params.
type SignDigestParams struct {
	Address string `json:"address"` // 0x hex
	Digest  string `json:"digest"`  // exactly 32 bytes, 0x hex
}

// SignatureResult is keymesh_signDigest's result.
type SignatureResult struct {
	// Signature is r ‖ s ‖ v as 0x hex, s low (EIP-2), v ∈ {27, 28}.
	Signature string `json:"signature"`
}

// TransactionRequest is eth_signTransaction's tx object, the shape of
// go-ethereum's and viem's transaction requests (quantities as 0x hex).
// Type selects the envelope: 0x0 legacy (EIP-155, chainId required), 0x1
// EIP-2930 (accessList), 0x2 EIP-1559 (maxFeePerGas, maxPriorityFeePerGas).
// Without Type, maxFeePerGas selects EIP-1559, an access list EIP-2930, else
// legacy. From, when given, must be the signing address; every other field is
// required except to (absent: contract creation), value, data/input and
// accessList. data and input are synonyms: give one, or both equal.
type TransactionRequest struct {
	Type                 *string       `json:"type,omitempty"`
	ChainID              *string       `json:"chainId,omitempty"`
	From                 *string       `json:"from,omitempty"`
	To                   *string       `json:"to,omitempty"`
	Nonce                *string       `json:"nonce,omitempty"`
	Gas                  *string       `json:"gas,omitempty"`
	GasPrice             *string       `json:"gasPrice,omitempty"`
	MaxFeePerGas         *string       `json:"maxFeePerGas,omitempty"`
	MaxPriorityFeePerGas *string       `json:"maxPriorityFeePerGas,omitempty"`
	Value                *string       `json:"value,omitempty"`
	Data                 *string       `json:"data,omitempty"`
	Input                *string       `json:"input,omitempty"`
	AccessList           []AccessTuple `json:"accessList,omitempty"`
}

// AccessTuple is one EIP-2930 access list entry.
type AccessTuple struct {
	Address     string   `json:"address"`
	StorageKeys []string `json:"storageKeys"`
}
