package main

import (
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keymesh/keymesh/internal/cli"
	"github.com/keymesh/keymesh/internal/porttest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"keymesh": func() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScript runs testdata/script/*.txtar. Extra commands:
//
//	freeports VAR N   set VAR to a base port with N free ports from it
//	occupy VAR        listen on a free 127.0.0.1 port until the script ends; set VAR to it
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"freeports": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: freeports VAR N")
				}
				n, err := strconv.Atoi(args[1])
				ts.Check(err)
				base, release, err := porttest.Reserve(n)
				ts.Check(err)
				ts.Defer(release)
				ts.Setenv(args[0], strconv.Itoa(base))
			},
			"occupy": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: occupy VAR")
				}
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				ts.Check(err)
				ts.Defer(func() { ln.Close() })
				ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			},
		},
	})
}
