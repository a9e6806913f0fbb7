package wallet

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/store"
)

// Store layout (namespaces of store.Store):
//
//	wallet/share    address (0x lower-case hex) → share record sealed under enclave.LabelShare(address)
//	wallet/address  address → addressRecord (JSON): who owns it
//	wallet/owner    esc(scope) "/" esc(account) "/" created (20 digits) "/" address → empty: eth_accounts' index
//	wallet/request  request id (hex) → address: the key generation each approved request made
//
// All four are written in one transaction when a key generation finishes.
// The last one stops a gateway from running a second key generation under
// one approval (auth accepts an approval again for the same request id, for
// signing retries): a node takes part in one key generation per request.
const (
	nsShare   = ShareNamespace
	nsAddress = "wallet/address"
	nsOwner   = "wallet/owner"
	nsRequest = "wallet/request"
)

// ShareNamespace is the store namespace of the sealed share records, keyed
// by address (0x lower-case hex), each sealed under
// enclave.LabelShare(address). A node's migration to a new build
// (internal/node, enclave_migrate.go) reseals every entry of it.
const ShareNamespace = "wallet/share"

// addressRecord is who owns a wallet key.
type addressRecord struct {
	Scope     string    `json:"scope"`
	Account   string    `json:"account"`
	PublicKey string    `json:"publicKey"` // compressed SEC1, 0x hex
	Threshold int       `json:"threshold"`
	Parties   []uint16  `json:"parties"`
	Created   time.Time `json:"created"`
}

// wallet is a key this node holds a share of, decoded once and cached: the
// signing hot path reads no store and unseals nothing.
type wallet struct {
	rec   addressRecord
	share *dkls23.Share // live: refusals are made on it (Service.refuse)

	// persist serialises the writes of this share record (persistRefusals),
	// so that concurrent refusals never lose one.
	persist sync.Mutex
}

func addrKey(a common.Address) string { return strings.ToLower(a.Hex()) }

func ownerPrefix(scope, account string) string {
	return url.PathEscape(scope) + "/" + url.PathEscape(account) + "/"
}

// address returns the Ethereum address of a share's public key.
func address(sh *dkls23.Share) (common.Address, error) {
	pub, err := ethcrypto.DecompressPubkey(sh.PublicKeyBytes())
	if err != nil {
		return common.Address{}, fmt.Errorf("wallet: public key: %w", err)
	}
	return ethcrypto.PubkeyToAddress(*pub), nil
}

func (s *Service) seal(b []byte, label string) ([]byte, error) {
	if s.sealer == nil {
		return b, nil
	}
	return s.sealer.Seal(b, label)
}

func (s *Service) unseal(b []byte, label string) ([]byte, error) {
	if s.sealer == nil {
		return b, nil
	}
	return s.sealer.Unseal(b, label)
}

// save stores a new key's share and ownership records in one transaction and
// caches it.
func (s *Service) save(ctx context.Context, req [requestLen]byte, scope, account string, sh *dkls23.Share) (common.Address, error) {
	addr, err := address(sh)
	if err != nil {
		return addr, err
	}
	raw, err := sh.MarshalBinary()
	if err != nil {
		return addr, fmt.Errorf("wallet: encode share: %w", err)
	}
	key := addrKey(addr)
	sealed, err := s.seal(raw, enclave.LabelShare(key))
	clear(raw)
	if err != nil {
		return addr, fmt.Errorf("wallet: seal share: %w", err)
	}
	parties := make([]uint16, 0, len(sh.Parties()))
	for _, p := range sh.Parties() {
		parties = append(parties, uint16(p))
	}
	rec := addressRecord{Scope: scope, Account: account, PublicKey: hexutil.Encode(sh.PublicKeyBytes()),
		Threshold: sh.Threshold(), Parties: parties, Created: time.Now().UTC()}
	recJSON, err := json.Marshal(rec)
	if err != nil {
		return addr, err
	}
	owner := fmt.Sprintf("%s%020d/%s", ownerPrefix(scope, account), rec.Created.UnixNano(), key)
	err = s.st.Update(ctx, func(tx store.Ops) error {
		if _, err := tx.Get(ctx, nsAddress, key); err == nil {
			return errors.New("wallet: address already exists") // 2^-160: a broken keygen, never overwrite
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := tx.Get(ctx, nsRequest, hex.EncodeToString(req[:])); err == nil {
			return errRequestUsed
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.Put(ctx, nsRequest, hex.EncodeToString(req[:]), []byte(key)); err != nil {
			return err
		}
		if err := tx.Put(ctx, nsShare, key, sealed); err != nil {
			return err
		}
		if err := tx.Put(ctx, nsAddress, key, recJSON); err != nil {
			return err
		}
		return tx.Put(ctx, nsOwner, owner, nil)
	})
	if err != nil {
		return addr, fmt.Errorf("wallet: store share: %w", err)
	}
	s.mu.Lock()
	s.cache[addr] = &wallet{rec: rec, share: sh}
	s.mu.Unlock()
	return addr, nil
}

// errRequestUsed is returned by save for a request that already made a key.
var errRequestUsed = errors.New("wallet: this request already created a key")

// errNoAccount is returned by load for an address this node holds no share of.
var errNoAccount = errors.New("wallet: unknown address")

// load returns the cached wallet for addr, reading and unsealing it on first
// use.
func (s *Service) load(ctx context.Context, addr common.Address) (*wallet, error) {
	s.mu.Lock()
	w := s.cache[addr]
	s.mu.Unlock()
	if w != nil {
		return w, nil
	}
	key := addrKey(addr)
	recJSON, err := s.st.Get(ctx, nsAddress, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoAccount
	} else if err != nil {
		return nil, fmt.Errorf("wallet: read account: %w", err)
	}
	var rec addressRecord
	if err := json.Unmarshal(recJSON, &rec); err != nil {
		return nil, fmt.Errorf("wallet: account record of %s: %w", key, err)
	}
	sealed, err := s.st.Get(ctx, nsShare, key)
	if err != nil {
		return nil, fmt.Errorf("wallet: read share of %s: %w", key, err)
	}
	raw, err := s.unseal(sealed, enclave.LabelShare(key))
	if err != nil {
		return nil, fmt.Errorf("wallet: unseal share of %s: %w", key, err)
	}
	sh := new(dkls23.Share)
	err = sh.UnmarshalBinary(raw)
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("wallet: share of %s: %w", key, err)
	}
	if got, err := address(sh); err != nil || got != addr {
		return nil, fmt.Errorf("wallet: share stored under %s is for another key", key)
	}
	w = &wallet{rec: rec, share: sh}
	s.mu.Lock()
	if c := s.cache[addr]; c != nil {
		w = c
	} else {
		s.cache[addr] = w
	}
	s.mu.Unlock()
	return w, nil
}

// addresses lists the account's addresses, oldest first.
func (s *Service) addresses(ctx context.Context, scope, account string) ([]string, error) {
	es, err := s.st.List(ctx, nsOwner, ownerPrefix(scope, account), 0)
	if err != nil {
		return nil, fmt.Errorf("wallet: list accounts: %w", err)
	}
	out := make([]string, 0, len(es))
	for _, e := range es {
		key := e.Key[strings.LastIndexByte(e.Key, '/')+1:]
		out = append(out, common.HexToAddress(key).Hex())
	}
	return out, nil
}

// persistRefusals writes w's share record again after a refusal, keeping
// every refusal: its own (made on w.share before the call) and those of
// the record in the store (written by an earlier refusal, or by another
// process of this node sharing its database), which it also makes on
// w.share. One transaction reads, merges and writes, under w.persist, so
// two refusals of one wallet, in one process or two, never lose one.
func (s *Service) persistRefusals(ctx context.Context, w *wallet) error {
	w.persist.Lock()
	defer w.persist.Unlock()
	addr, err := address(w.share)
	if err != nil {
		return err
	}
	key := addrKey(addr)
	label := enclave.LabelShare(key)
	return s.st.Update(ctx, func(tx store.Ops) error {
		old, err := tx.Get(ctx, nsShare, key)
		if err != nil {
			return fmt.Errorf("wallet: read share of %s: %w", key, err)
		}
		raw, err := s.unseal(old, label)
		if err != nil {
			return fmt.Errorf("wallet: unseal share of %s: %w", key, err)
		}
		stored := new(dkls23.Share)
		err = stored.UnmarshalBinary(raw)
		clear(raw)
		if err != nil {
			return fmt.Errorf("wallet: share of %s: %w", key, err)
		}
		for _, p := range stored.RefusedPeers() {
			if err := w.share.Refuse(p); err != nil {
				stored.Zero()
				return err
			}
		}
		stored.Zero()
		raw, err = w.share.MarshalBinary() // every refusal made so far
		if err != nil {
			return err
		}
		sealed, err := s.seal(raw, label)
		clear(raw)
		if err != nil {
			return err
		}
		return tx.Put(ctx, nsShare, key, sealed)
	})
}
