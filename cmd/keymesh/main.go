// Command keymesh runs keymesh nodes and development clusters; see
// `keymesh help`. The commands live in internal/cli.
package main

import (
	"os"

	"github.com/keymesh/keymesh/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
