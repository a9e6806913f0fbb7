package config_test

import (
	"fmt"

	"github.com/keymesh/keymesh/internal/config"
)

// The port scheme of `keymesh cluster init --nodes 3 --base-port 7100`.
func ExamplePorts() {
	for i := 1; i <= 3; i++ {
		api, peer := config.Ports(7100, i)
		fmt.Printf("node %d: api %d, peer %d\n", i, api, peer)
	}
	// Output:
	// node 1: api 7100, peer 7101
	// node 2: api 7102, peer 7103
	// node 3: api 7104, peer 7105
}
