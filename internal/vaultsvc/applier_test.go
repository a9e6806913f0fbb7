package vaultsvc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
	"github.com/keymesh/keymesh/internal/vault"
)

// world is a scope with two accounts (alice, bob), each with a plain-key
// credential, as auth records; and the developer key.
type world struct {
	scope      string
	dev        *record.PrivateKey
	alice, bob *record.PrivateKey
	auth       [][]byte
}

func newWorld(t testing.TB) *world {
	t.Helper()
	key := func() *record.PrivateKey {
		k, err := record.GenerateKey(record.P256)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	w := &world{dev: key(), alice: key(), bob: key()}
	sc := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: record.ModeUser, SessionTTL: 3600, DevKeys: []record.PublicKey{w.dev.Public()}}}
	rand.Read(sc.Nonce[:])
	w.scope = sc.ScopeID()
	w.auth = append(w.auth, sign(t, record.ScopeCreate, sc.Marshal(), w.dev))
	for name, k := range map[string]*record.PrivateKey{"alice": w.alice, "bob": w.bob} {
		cred := record.KeyCredential(k.Public())
		b := &record.AccountRegisterBody{Scope: w.scope, Account: name, Time: 1, Credential: &cred}
		rand.Read(b.Nonce[:])
		w.auth = append(w.auth, sign(t, record.AccountRegister, b.Marshal(), w.dev))
	}
	return w
}

func sign(t testing.TB, k record.Kind, body []byte, key *record.PrivateKey) []byte {
	t.Helper()
	r, err := record.Sign(k, body, key)
	if err != nil {
		t.Fatal(err)
	}
	return r.Marshal()
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// apply applies rec with the applier of its kind, in one transaction.
func apply(st store.Store, rec []byte) error {
	var a replica.Applier = Applier{}
	if k, _ := record.PeekKind(rec); int(k) < 64 {
		a = auth.Applier{}
	}
	return st.Update(context.Background(), func(tx store.Ops) error { return a.Apply(context.Background(), tx, rec) })
}

// state dumps the vault's namespaces.
func state(t *testing.T, st store.Store) string {
	t.Helper()
	var sb strings.Builder
	for _, ns := range []string{nsBox, nsGrant, nsGranted, nsReceived, nsRevoked, nsRevokeBy, nsApplied} {
		es, err := st.List(context.Background(), ns, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			fmt.Fprintf(&sb, "%s %s %x\n", ns, e.Key, e.Value)
		}
	}
	return sb.String()
}

func sealed(t testing.TB, msg string) ([32]byte, []byte) {
	t.Helper()
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := vault.SealTo(k.Public(), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return s.EncryptorPublicKey, s.Content
}

const dataID = "6c1b3a52-0d7e-4f38-9a41-2b7c5e9d0f13"

func (w *world) box(t testing.TB, version uint64, signer *record.PrivateKey) []byte {
	ek, c := sealed(t, fmt.Sprintf("version %d", version))
	b := api.VaultBox{Scope: w.scope, Account: "alice", DataID: dataID, Version: version, EncryptorKey: ek, Content: c}
	return sign(t, KindBox, b.Marshal(), signer)
}

func (w *world) grant(t testing.TB, version uint64, lockedUntil int64) ([]byte, [32]byte) {
	ek, c := sealed(t, "copy")
	g := api.VaultGrant{Scope: w.scope, Account: "alice", DataID: dataID, Version: version, GranteeScope: w.scope, GranteeAccount: "bob",
		GranteeKey: [32]byte{9}, LockedUntil: lockedUntil, ContentHash: [32]byte{1}, CopyEncryptorKey: ek, CopyContent: c}
	rec := sign(t, KindGrant, g.Marshal(), w.alice)
	r, err := kinds.Unmarshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return rec, r.ID()
}

func (w *world) revoke(t testing.TB, id [32]byte, at int64, account string, signer *record.PrivateKey) []byte {
	v := api.VaultRevoke{Scope: w.scope, Account: account, Grant: id, RevokedAt: at}
	return sign(t, KindRevoke, v.Marshal(), signer)
}

// TestApplierConverges applies one set of auth and vault records in
// random orders (a record missing a dependency is retried, as the
// replica does) on fresh stores: every order ends in the same vault
// state, and the earliest of two revocations stands.
func TestApplierConverges(t *testing.T) {
	w := newWorld(t)
	g, gid := w.grant(t, 1, 100)
	recs := append([][]byte{}, w.auth...)
	recs = append(recs, w.box(t, 1, w.alice), w.box(t, 2, w.alice), w.box(t, 2, w.alice), g,
		w.revoke(t, gid, 200, "alice", w.alice), w.revoke(t, gid, 150, "alice", w.alice))
	var want string
	for run := range 12 {
		order := append([][]byte{}, recs...)
		for i := len(order) - 1; i > 0; i-- {
			j, _ := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
			order[i], order[j.Int64()] = order[j.Int64()], order[i]
		}
		st := openStore(t)
		for len(order) > 0 {
			var left [][]byte
			for _, rec := range order {
				if err := apply(st, rec); errors.Is(err, replica.ErrMissing) {
					left = append(left, rec)
				} else if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
			}
			if len(left) == len(order) {
				t.Fatalf("run %d: %d records never apply", run, len(left))
			}
			order = left
		}
		got := state(t, st)
		if run == 0 {
			want = got
			at, ok, err := revokedAt(context.Background(), st, fmt.Sprintf("%x", gid[:]))
			if err != nil || !ok || at != 150 {
				t.Fatalf("revoked at %d %v %v, want the earliest, 150", at, ok, err)
			}
		} else if got != want {
			t.Fatalf("run %d: another state:\n%s\nwant\n%s", run, got, want)
		}
	}
}

// TestApplierRefuses: each forged or early record is refused with
// ErrInvalid and writes nothing.
func TestApplierRefuses(t *testing.T) {
	w := newWorld(t)
	st := openStore(t)
	for _, rec := range w.auth {
		if err := apply(st, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(st, w.box(t, 1, w.alice)); err != nil {
		t.Fatal(err)
	}
	g, gid := w.grant(t, 1, 1000)
	if err := apply(st, g); err != nil {
		t.Fatal(err)
	}
	before := state(t, st)
	badSig := w.box(t, 3, w.alice)
	badSig[len(badSig)-1] ^= 1
	for name, rec := range map[string][]byte{
		"box proven by another account's key": w.box(t, 3, w.bob),
		"box signed by the developer key":     w.box(t, 3, w.dev),
		"box with a bad signature":            badSig,
		"revocation before the timelock":      w.revoke(t, gid, 999, "alice", w.alice),
		"revocation by another account":       w.revoke(t, gid, 2000, "bob", w.bob),
		"revocation by the developer":         w.revoke(t, gid, 2000, "alice", w.dev),
		"an auth kind through the vault":      sign(t, record.ScopeCreate, []byte{1}, w.alice),
	} {
		var err error
		if k, _ := record.PeekKind(rec); k == record.ScopeCreate {
			err = st.Update(context.Background(), func(tx store.Ops) error { return Applier{}.Apply(context.Background(), tx, rec) })
		} else {
			err = apply(st, rec)
		}
		// A key not (yet) registered to the account is a missing
		// dependency, as in auth (a credential.add may come): refused and
		// not stored, kept pending by the replica. The others never apply.
		mayApplyLater := name == "box proven by another account's key"
		if !errors.Is(err, replica.ErrInvalid) || errors.Is(err, replica.ErrMissing) != mayApplyLater {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := state(t, st); got != before {
		t.Fatalf("a refused record wrote:\n%s", got)
	}
	// A grant of a version not applied here, a revocation of a grant not
	// applied here: missing dependencies, kept by the replica.
	g2, gid2 := w.grant(t, 7, 0)
	for name, rec := range map[string][]byte{
		"grant of an unknown version":    g2,
		"revocation of an unknown grant": w.revoke(t, gid2, 5, "alice", w.alice),
	} {
		if err := apply(st, rec); !errors.Is(err, replica.ErrMissing) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The same body again is a duplicate, whatever its signature.
	if err := apply(st, w.revoke(t, gid, 1000, "alice", w.alice)); err != nil {
		t.Fatal(err)
	}
	if err := apply(st, w.revoke(t, gid, 1000, "alice", w.alice)); !errors.Is(err, replica.ErrDuplicate) {
		t.Fatalf("the same revocation twice: %v", err)
	}
}

// TestRevokeGateway: the gateway refuses a revocation while its clock is
// before the timelock, or dated far from its clock, before submitting.
func TestRevokeGateway(t *testing.T) {
	w := newWorld(t)
	st := openStore(t)
	for _, rec := range w.auth {
		if err := apply(st, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := apply(st, w.box(t, 1, w.alice)); err != nil {
		t.Fatal(err)
	}
	g, gid := w.grant(t, 1, 10_000)
	if err := apply(st, g); err != nil {
		t.Fatal(err)
	}
	submitted := 0
	clock := time.Unix(9_000, 0)
	s := &Service{st: st, now: func() time.Time { return clock },
		submit:  func(context.Context, []byte) error { submitted++; return nil },
		catchUp: func(context.Context) error { return nil }}
	for name, c := range map[string]struct {
		now, at int64
	}{
		"before the timelock":         {9_900, 10_000},
		"dated 6 minutes ahead":       {10_000, 10_360},
		"dated 6 minutes in the past": {10_400, 10_040},
	} {
		clock = time.Unix(c.now, 0)
		p := api.SignedRecord{Record: b64(w.revoke(t, gid, c.at, "alice", w.alice))}
		if _, err := s.Revoke(context.Background(), p); err == nil {
			t.Errorf("%s: accepted", name)
		} else if ae := (*api.Error)(nil); !errors.As(err, &ae) || ae.Code != api.CodeInvalidInput {
			t.Errorf("%s: %v", name, err)
		}
	}
	if submitted != 0 {
		t.Fatalf("%d refused revocations submitted", submitted)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
