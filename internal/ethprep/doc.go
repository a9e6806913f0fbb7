// Package ethprep turns what a client asks an Ethereum account to sign into
// the 32-byte digest that is signed, with one set of rules for the node
// (internal/wallet) and the SDK (client): a request the SDK accepts is one
// every node accepts, and both compute the same digest from it. Before this
// package the two had drifted (the SDK built EIP-1559 transactions whose tip
// exceeded the fee cap and decoded typed data leniently; the nodes refused
// both), so the SDK approved requests no node would sign.
//
// What it prepares, each from its specification:
//
//   - personal_sign messages: EIP-191 version 0x45,
//     keccak256("\x19Ethereum Signed Message:\n" ‖ len(msg) ‖ msg)
//     (PersonalMessage, PersonalDigest).
//   - EIP-712 typed data: the digest of EIP-712 "Specification of the
//     eth_signTypedData JSON RPC", keccak256("\x19\x01" ‖
//     domainSeparator ‖ hashStruct(message)), computed by go-ethereum's
//     apitypes from JSON decoded strictly: unknown members, trailing data,
//     and a missing types or primaryType are refused (DecodeTypedData,
//     TypedDataHash).
//   - eth_signTransaction requests (DecodeTxRequest, BuildTx, TxRequest):
//     legacy transactions with EIP-155 replay protection ("Specification":
//     chainId is required and non-zero), EIP-2930 access-list transactions
//     (type 0x1, "Parameters": accessList of [address, storageKeys]) and
//     EIP-1559 transactions (type 0x2, "Specification": max_priority_fee_per_gas
//     must not exceed max_fee_per_gas, the block validity rule "assert
//     transaction.max_fee_per_gas >= transaction.max_priority_fee_per_gas").
//     Quantities are 0x hex without leading zeros (the Ethereum JSON-RPC
//     encoding), and the limits of package api (MaxTxDataBytes,
//     MaxAccessListItems, MaxTypedDataBytes, MaxMessageBytes) are enforced
//     here, so that the SDK refuses what a node would.
//
// Errors are *api.Error, with the code a node answers with:
// CodeInvalidParams for input of the wrong shape or type, CodeInvalidInput
// for well-formed input that is refused (a chain id of 0, a tip above the
// fee cap, typed data that does not hash), CodeLimitExceeded for oversized
// input. Messages never echo the input's bytes beyond field names.
//
// The package does no I/O and never logs: it is one of the pure packages
// the SDK may import (client/deps_test.go).
package ethprep
