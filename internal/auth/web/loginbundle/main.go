// Command loginbundle writes keymesh's passkey login page (package web)
// into a directory, for an app to serve from its own origin:
//
//	go run github.com/keymesh/keymesh/internal/auth/web/loginbundle -out DIR -node https://node.example/
//
// -node is the node JSON-RPC URL the page posts to; without it the page
// posts to "/" of its own origin (an app that forwards that path to a
// node). Serve the files with web.CSP (connect-src naming the node's
// origin when it is another one). See docs/auth.md.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/keymesh/keymesh/internal/auth/web"
)

func main() {
	out := flag.String("out", "", "directory to write index.html, login.css and login.js into (required)")
	node := flag.String("node", "", "node JSON-RPC URL the page posts to (default: / of the page's origin)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: loginbundle -out DIR [-node URL]")
		os.Exit(2)
	}
	if err := web.WriteBundle(*out, *node); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
