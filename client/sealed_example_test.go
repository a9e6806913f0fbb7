package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/keymesh/keymesh/client"
)

// A client for a production node: it verifies the node's attestation
// against the pinned build before the first call, then seals every call.
func ExampleWithAttestation() {
	c, err := client.New("http://127.0.0.1:7100", client.WithAttestation(client.Attestation{
		// keymesh attest verify --build, or the release notes, give it.
		Measurements: []string{"9c1f0e5a8f6e4c2b7d3a1e0f9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b07"},
		// Only for the sim backend (development): its quotes prove nothing
		// about hardware, and are checked against the cluster's platform
		// key, which `keymesh cluster init` prints.
		AllowSimulated:  true,
		SimPlatformKeys: []string{"5ea1c0de5ea1c0de5ea1c0de5ea1c0de5ea1c0de5ea1c0de5ea1c0de5ea1c0de"},
	}))
	if err != nil {
		log.Fatal(err)
	}
	info, err := c.NodeInfo(context.Background())
	if err != nil {
		// A node running another build: "… measurement <node's> … pinned <ours>".
		log.Fatal(err)
	}
	fmt.Println(info.NodeID, c.Attested().Measurement)
}
