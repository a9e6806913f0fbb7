// Command loginbundle writes keymesh's passkey login page (package web)
// into a directory, for an app to serve from its own origin:
//
//	go run github.com/keymesh/keymesh/internal/auth/web/loginbundle -out DIR -node https://node.example/
//
// -node is the node JSON-RPC URL the page posts to; without it the page
// posts to "/" of its own origin (an app that forwards that path to a
// node). -platform-key (the cluster's sim platform key, hex) makes the
// page verify the node's attestation and seal its calls, as production
// nodes require; -measurement pins node builds (comma-separated). Serve
// the files with web.CSPFor(node), which it prints. See docs/auth.md;
// `keymesh login-bundle` does the same.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/keymesh/keymesh/internal/auth/web"
)

func main() {
	out := flag.String("out", "", "directory to write index.html, login.css and login.js into (required)")
	node := flag.String("node", "", "node JSON-RPC URL the page posts to (default: / of the page's origin)")
	platformKey := flag.String("platform-key", "", "the cluster's sim platform key (hex): the page verifies the node's attestation against it and seals its calls")
	measurement := flag.String("measurement", "", "node builds (hex measurements, comma-separated) the page accepts (default: any)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: loginbundle -out DIR [-node URL] [-platform-key HEX] [-measurement HEX,...]")
		os.Exit(2)
	}
	o := web.Options{Node: *node}
	if *platformKey != "" {
		o.SimRoots = []string{*platformKey}
	}
	if *measurement != "" {
		o.Measurements = strings.Split(*measurement, ",")
	}
	if err := web.WriteBundleWith(*out, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("serve it with Content-Security-Policy: %s\n", web.CSPFor(*node))
}
