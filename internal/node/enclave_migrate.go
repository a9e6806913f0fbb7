package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/enclave/sim"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
	"github.com/keymesh/keymesh/internal/wallet"
)

// Migrating a node's sealed secrets from one build to the next
// (docs/enclave.md, "Upgrades"): the new build (MigrateIn) makes a request
// with a quote over an ephemeral key; the old build (MigrateOut) checks that
// quote against the new build's expected measurement, unseals every secret
// of the data dir and seals them to the ephemeral key with a quote of its
// own; the new build checks that quote against the old build's measurement
// and reseals each secret under its own measurement. The node must be
// stopped while this runs.

// sealedStoreNamespaces are the store namespaces that hold sealed secrets,
// with the seal label of each key.
var sealedStoreNamespaces = []struct {
	ns    string
	label func(key string) (string, error)
}{
	{enclaveNS, func(key string) (string, error) {
		switch key {
		case enclaveHPKEKey, enclaveHPKEKey + "-x25519":
			return enclave.LabelHPKE, nil
		case enclaveRSAKey:
			return enclave.LabelRSA, nil
		}
		return "", fmt.Errorf("node: unknown sealed key %q in store namespace %q", key, enclaveNS)
	}},
	// Package wallet's share records, keyed by address.
	{wallet.ShareNamespace, func(key string) (string, error) { return enclave.LabelShare(key), nil }},
}

// sealedLocation says where one sealed secret lives: the identity file, or
// a store entry.
type sealedLocation struct {
	identity bool
	ns, key  string
}

// collectSealed lists every sealed secret of the data dir, in a fixed order
// (identity, then each namespace by key), so that both builds of a
// migration see the same list.
// The identity's label binds it to cfg's roster (identityLabel); the new
// build reseals it under the same label.
func collectSealed(ctx context.Context, cfg *config.Node, st store.Store) ([]sealedLocation, []enclave.Secret, error) {
	dataDir := cfg.DataDir
	idLabel, err := identityLabel(cfg)
	if err != nil {
		return nil, nil, err
	}
	var locs []sealedLocation
	var secrets []enclave.Secret
	id, err := config.ReadSealedIdentityFile(dataDir)
	switch {
	case err == nil:
		locs = append(locs, sealedLocation{identity: true})
		secrets = append(secrets, enclave.Secret{Label: idLabel, Sealed: id})
	case errors.Is(err, fs.ErrNotExist):
		// Never started: the identity is still the plaintext key from
		// cluster init, which the new build will seal itself.
	default:
		return nil, nil, err
	}
	for _, n := range sealedStoreNamespaces {
		entries, err := st.List(ctx, n.ns, "", 0)
		if err != nil {
			return nil, nil, fmt.Errorf("node: %w", err)
		}
		for _, e := range entries {
			label, err := n.label(e.Key)
			if err != nil {
				return nil, nil, err
			}
			locs = append(locs, sealedLocation{ns: n.ns, key: e.Key})
			secrets = append(secrets, enclave.Secret{Label: label, Sealed: e.Value})
		}
	}
	return locs, secrets, nil
}

// openNodeStore opens and migrates the store cfg names (SQLite in the data
// dir, or PostgreSQL), where the node keeps its sealed request keys and
// wallet shares.
func openNodeStore(ctx context.Context, cfg *config.Node) (store.Store, error) {
	st, err := OpenStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	return st, nil
}

// openStore opens and migrates the SQLite store in dataDir.
func openStore(ctx context.Context, dataDir string) (*sqlite.DB, error) {
	st, err := sqlite.Open(filepath.Join(dataDir, StoreFile))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	return st, nil
}

// MigrateOut is the old build's side of a migration of the node cfg (its
// data dir and its store, SQLite or PostgreSQL): it checks that the target
// measurement to carries a release authorisation (approvals by at least t
// distinct nodes of cfg's cluster, valid now; attest.VerifyRelease), then
// the new build's request against to (same simulated platform), and returns
// the bundle of every sealed secret for it, and how many secrets it holds.
// Nothing is unsealed for a target the cluster did not approve; the error
// wraps attest.ErrRelease.
func MigrateOut(ctx context.Context, cfg *config.Node, request []byte, to enclave.Measurement, approvals []*attest.Approval) ([]byte, int, error) {
	dataDir := cfg.DataDir
	b, err := OpenEnclave(dataDir)
	if err != nil {
		return nil, 0, err
	}
	defer b.Close()
	id, err := openIdentity(cfg, b)
	if err != nil {
		return nil, 0, err
	}
	self := id.PublicKey()
	id.Destroy()
	roster, err := Roster(cfg, b.Platform(), self)
	if err != nil {
		return nil, 0, err
	}
	if err := attest.VerifyRelease(approvals, roster, to, time.Now()); err != nil {
		return nil, 0, fmt.Errorf("node: migration to %s refused: %w", to, err)
	}
	st, err := openNodeStore(ctx, cfg)
	if err != nil {
		return nil, 0, err
	}
	defer st.Close()
	_, secrets, err := collectSealed(ctx, cfg, st)
	if err != nil {
		return nil, 0, err
	}
	bundle, err := enclave.ExportMigration(b, request, b.LocalVerifier(to), secrets)
	if err != nil {
		return nil, 0, fmt.Errorf("node: migration: %w", err)
	}
	return bundle, len(secrets), nil
}

// MigrationIn is the new build's side of a migration, between the request
// and the bundle. It holds the ephemeral key in memory only.
type MigrationIn struct {
	cfg     *config.Node
	dataDir string
	b       *sim.Backend
	target  *enclave.MigrationTarget
}

// StartMigrateIn starts a migration into the node cfg (its data dir and its
// store) with this build and returns the request to give to the old build
// (MigrateOut).
func StartMigrateIn(cfg *config.Node) (*MigrationIn, []byte, error) {
	dataDir := cfg.DataDir
	b, err := OpenEnclave(dataDir)
	if err != nil {
		return nil, nil, err
	}
	t, req, err := enclave.NewMigrationTarget(b)
	if err != nil {
		b.Close()
		return nil, nil, fmt.Errorf("node: migration: %w", err)
	}
	return &MigrationIn{cfg: cfg, dataDir: dataDir, b: b, target: t}, req, nil
}

// Measurement is this build's measurement, the one to give MigrateOut.
func (m *MigrationIn) Measurement() enclave.Measurement { return m.b.Measurement() }

// Close releases the backend.
func (m *MigrationIn) Close() { m.b.Close() }

// Finish checks the bundle against the old build's measurement from,
// reseals every secret under this build's measurement — but the request
// keys, which it replaces with fresh ones (RotateRequestKeys) — and writes
// them back in place: the store entries in one transaction, then the identity file
// (an atomic rename). It returns how many secrets were migrated. Nothing is
// written unless every secret verified and the bundle matches the data dir.
func (m *MigrationIn) Finish(ctx context.Context, bundle []byte, from enclave.Measurement) (int, error) {
	st, err := openNodeStore(ctx, m.cfg)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	locs, old, err := collectSealed(ctx, m.cfg, st)
	if err != nil {
		return 0, err
	}
	resealed, err := m.target.Import(bundle, m.b.LocalVerifier(from))
	if err != nil {
		return 0, fmt.Errorf("node: migration: %w", err)
	}
	if len(resealed) != len(old) {
		return 0, fmt.Errorf("node: migration: the bundle holds %d secrets and the data dir %d; was the node running?", len(resealed), len(old))
	}
	for i := range old {
		if resealed[i].Label != old[i].Label {
			return 0, fmt.Errorf("node: migration: secret %d is %q in the bundle and %q in the data dir", i, resealed[i].Label, old[i].Label)
		}
	}
	var identity []byte
	err = st.Update(ctx, func(tx store.Ops) error {
		for i, l := range locs {
			if l.identity {
				identity = resealed[i].Sealed
				continue
			}
			v := resealed[i].Sealed
			if l.ns == enclaveNS {
				// Request keys are not carried over: the new build makes
				// its own, so a key the old build exposed dies with it.
				var err error
				if v, err = freshRequestKey(m.b, l.key); err != nil {
					return err
				}
			}
			if err := tx.Put(ctx, l.ns, l.key, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("node: migration: %w", err)
	}
	if identity != nil {
		if err := config.ReplaceSealedIdentityFile(m.dataDir, identity); err != nil {
			return 0, fmt.Errorf("node: migration: %w", err)
		}
	}
	return len(resealed), nil
}

// SealedBy returns the measurement the data dir's identity key is sealed
// to, or false if it has no sealed identity yet.
func SealedBy(dataDir string) (enclave.Measurement, bool, error) {
	b, err := config.ReadSealedIdentityFile(dataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return enclave.Measurement{}, false, nil
	}
	if err != nil {
		return enclave.Measurement{}, false, err
	}
	var s enclave.Sealed
	if err := s.UnmarshalBinary(b); err != nil {
		return enclave.Measurement{}, false, fmt.Errorf("node: %s: %w", config.SealedIdentityFile, err)
	}
	return s.Measurement, true, nil
}

// freshRequestKey generates a new request key of the kind stored under key
// in the enclave namespace, sealed by b.
func freshRequestKey(b enclave.Backend, key string) ([]byte, error) {
	var kind enclave.KeyKind
	label := enclave.LabelHPKE
	switch key {
	case enclaveHPKEKey:
		kind = enclave.KeyHPKEXWing
	case enclaveHPKEKey + "-x25519":
		kind = enclave.KeyHPKEX25519
	case enclaveRSAKey:
		kind, label = enclave.KeyRSA3072, enclave.LabelRSA
	default:
		return nil, fmt.Errorf("node: unknown request key %q in store namespace %q", key, enclaveNS)
	}
	_, sealed, err := b.GenerateKey(kind, label)
	if err != nil {
		return nil, fmt.Errorf("node: new request key %s: %w", key, err)
	}
	return sealed, nil
}

// RotateRequestKeys replaces the request keys of the node cfg (HPKE and
// RSA, in its store) with fresh ones, in one transaction, and returns the
// store keys it replaced. The node must be stopped. Once it starts again it
// attests the new keys, and requests sealed to the old ones are refused
// (api.CodeSealedUnknownKey): clients attest again. A node that has no
// request keys yet makes them on its first start.
func RotateRequestKeys(ctx context.Context, cfg *config.Node) ([]string, error) {
	b, err := OpenEnclave(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	st, err := openNodeStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var rotated []string
	err = st.Update(ctx, func(tx store.Ops) error {
		entries, err := tx.List(ctx, enclaveNS, "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			// Only this build may replace them: refuse keys another build
			// sealed (migrate first).
			if _, err := enclave.OpenKey(b, e.Value, requestKeyLabel(e.Key)); err != nil {
				return fmt.Errorf("node: request key %s: %w", e.Key, err)
			}
			v, err := freshRequestKey(b, e.Key)
			if err != nil {
				return err
			}
			if err := tx.Put(ctx, enclaveNS, e.Key, v); err != nil {
				return err
			}
			rotated = append(rotated, e.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("node: rotating request keys: %w", err)
	}
	return rotated, nil
}

func requestKeyLabel(key string) string {
	if key == enclaveRSAKey {
		return enclave.LabelRSA
	}
	return enclave.LabelHPKE
}
