package client_test

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/node"
)

// memPins is an in-memory client.PinStore.
type memPins struct {
	mu   sync.Mutex
	pins map[string]client.Pin
}

func (m *memPins) LoadPin(url string) (*client.Pin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pins[url]
	if !ok {
		return nil, nil
	}
	return &p, nil
}

func (m *memPins) StorePin(url string, p client.Pin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins[url] = p
	return nil
}

// TestPinStoreAndRelease: through Attestation.Pins, a first client pins
// the node on first use; a later client (another run) whose pin names
// another build is refused with a *client.PinChangedError naming both; a
// release authorisation by t−1 nodes, or for another cluster, does not
// help; one by t nodes makes the client accept the build and store it.
func TestPinStoreAndRelease(t *testing.T) {
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: t.TempDir(), BasePort: porttest.Block(t, 4)})
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Options{Config: cfgs[0], Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	url, root, m := n.APIURL(), cfgs[0].SimPlatformKey, n.Enclave().Measurement()
	waitServing(t, url)

	pins := &memPins{pins: map[string]client.Pin{}}
	a := client.Attestation{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []string{root}, Pins: pins}
	if _, err := sealedTo(t, url, a).NodeInfo(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, _ := pins.LoadPin(url)
	if p == nil || p.Measurement != m.String() || p.NodeIdentity != cfgs[1].Peers[0].IdentityKey || p.Platform != "sim" || len(p.PlatformKeys) != 1 {
		t.Fatalf("first use stored %+v", p)
	}

	old := strings.Repeat("0b", 32)
	p.Measurement = old
	pins.StorePin(url, *p)
	_, err = sealedTo(t, url, a).NodeInfo(context.Background())
	var pe *client.PinChangedError
	var me *attest.MeasurementError
	if !errors.As(err, &pe) || pe.Got != m.String() || pe.Pinned[0] != old || !errors.As(err, &me) || !strings.Contains(err.Error(), "approve-release") {
		t.Fatalf("changed build: %v", err)
	}

	approval := func(c *config.Node) []byte {
		ap, err := node.ApproveRelease(c, m, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ap)
		return b
	}
	a1, a2 := approval(cfgs[0]), approval(cfgs[1])
	ids := []string{cfgs[1].Peers[0].IdentityKey, cfgs[0].Peers[0].IdentityKey}
	for _, rt := range []*client.ReleaseTrust{
		{ClusterID: cfgs[0].ClusterID, Threshold: 2, Identities: ids, Approvals: [][]byte{a1, a1}},
		{ClusterID: "another", Threshold: 2, Identities: ids, Approvals: [][]byte{a1, a2}},
	} {
		a.Release = rt
		if _, err := sealedTo(t, url, a).NodeInfo(context.Background()); !errors.As(err, &pe) || pe.Release == nil {
			t.Fatalf("insufficient release %+v: %v", rt.ClusterID, err)
		}
	}
	a.Release = &client.ReleaseTrust{ClusterID: cfgs[0].ClusterID, Threshold: 2, Identities: ids, Approvals: [][]byte{a1, a2}}
	if _, err := sealedTo(t, url, a).NodeInfo(context.Background()); err != nil {
		t.Fatalf("t approvals: %v", err)
	}
	if p, _ := pins.LoadPin(url); p.Measurement != m.String() {
		t.Fatalf("approved build not stored: %s", p.Measurement)
	}
	a.Release = nil
	if _, err := sealedTo(t, url, a).NodeInfo(context.Background()); err != nil {
		t.Fatalf("after the approved change: %v", err)
	}
}
