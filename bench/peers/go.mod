module github.com/keymesh/keymesh/bench/peers

go 1.26.0

require (
	github.com/bnb-chain/tss-lib/v2 v2.0.2
	github.com/coinbase/kryptology v1.8.0
	github.com/decred/dcrd/dcrec/secp256k1/v4 v4.4.1
	github.com/ipfs/go-log v1.0.5
	github.com/taurusgroup/multi-party-sig v0.7.0-alpha-2025-01-28
)

require (
	filippo.io/edwards25519 v1.0.0-rc.1 // indirect
	github.com/agl/ed25519 v0.0.0-20200225211852-fd4d107ace12 // indirect
	github.com/btcsuite/btcd v0.23.4 // indirect
	github.com/btcsuite/btcd/btcec/v2 v2.3.2 // indirect
	github.com/btcsuite/btcd/chaincfg/chainhash v1.0.1 // indirect
	github.com/btcsuite/btcutil v1.0.3-0.20201208143702-a53e38424cce // indirect
	github.com/bwesterb/go-ristretto v1.2.4 // indirect
	github.com/consensys/gnark-crypto v0.18.1 // indirect
	github.com/cronokirby/saferith v0.33.0 // indirect
	github.com/decred/dcrd/dcrec/edwards/v2 v2.0.3 // indirect
	github.com/fxamacker/cbor/v2 v2.9.4 // indirect
	github.com/gogo/protobuf v1.3.2 // indirect
	github.com/gtank/merlin v0.1.1 // indirect
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/hashicorp/go-multierror v1.1.1 // indirect
	github.com/ipfs/go-log/v2 v2.1.3 // indirect
	github.com/keymesh/keymesh v0.0.0
	github.com/klauspost/cpuid/v2 v2.3.0 // indirect
	github.com/mimoo/StrobeGo v0.0.0-20181016162300-f8f6d4d2b643 // indirect
	github.com/opentracing/opentracing-go v1.2.0 // indirect
	github.com/otiai10/primes v0.0.0-20210501021515-f1b2be525a11 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/x448/float16 v0.8.4 // indirect
	github.com/zeebo/blake3 v0.2.3 // indirect
	go.uber.org/atomic v1.7.0 // indirect
	go.uber.org/multierr v1.6.0 // indirect
	go.uber.org/zap v1.16.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/keymesh/keymesh => ../..

replace github.com/agl/ed25519 => github.com/binance-chain/edwards25519 v0.0.0-20200305024217-f36fc4b53d43

replace github.com/btcsuite/btcd => github.com/btcsuite/btcd v0.22.3

replace github.com/consensys/gnark-crypto => github.com/consensys/gnark-crypto v0.5.3
