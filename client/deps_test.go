package client_test

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// The SDK's dependency rule (issue 15): package client may import package
// api and the pure libraries that build and check what goes on the wire —
// no server code. Server code is everything else of this module (httpapi,
// auth, wallet, node, replica, store, transport, config, mpc, …) and the
// libraries only a node needs. A package added to sdkAllowed must import
// nothing but the standard library, api and other allowed packages, and
// never do I/O beyond what its caller hands it.
const module = "github.com/keymesh/keymesh"

var sdkAllowed = []string{
	module + "/api",
	module + "/client",
	module + "/internal/attest",      // verifies a node's attestation (no I/O)
	module + "/internal/codec",       // length-prefixed binary readers (cryptobyte) of the formats below
	module + "/internal/enclave",     // quote, measurement and key types attest verifies
	module + "/internal/enclave/sim", // the sim platform's quote verification
	module + "/internal/envelope",    // seals requests, opens answers
	module + "/internal/ethprep",     // tx and EIP-712 preparation, the nodes' rules
	module + "/internal/record",      // signed records and approvals, canonical encoding
	module + "/internal/vault",       // NaCl boxes and grant copies, sealed and opened client-side (no I/O)
	module + "/internal/oprf",        // the UID client's RFC 9497 blind, proof checks and finalize (pure)

	// The hardware attestation verifiers attest uses (pure: no I/O, no
	// logging of their own; each pins its vendor's roots).
	module + "/internal/attest/nitro",  // AWS Nitro attestation documents (COSE_Sign1, AWS root G1)
	module + "/internal/attest/sevsnp", // AMD SEV-SNP reports (go-sev-guest, offline)
	module + "/internal/attest/tdx",    // Intel TDX quotes (go-tdx-guest, offline)
}

// sdkForbidden are third-party module paths that only a node uses; none may
// reach the SDK, even through an allowed package.
var sdkForbidden = []string{
	"github.com/prometheus/",
	"github.com/go-webauthn/",
	"github.com/jackc/",
	"modernc.org/",
	"github.com/spf13/",
	"github.com/chromedp/",
	"github.com/rogpeppe/go-internal/",
	"pgregory.net/rapid",
	"github.com/cockroachdb/",
}

// TestNoServerDependencies is the CI check of the rule: it lists the
// SDK's dependencies with `go list -deps` (the build tags CI uses too) and
// fails naming every forbidden package and the import chain that pulls it
// in. It also holds the SDK to never logging: no log or log/slog import.
func TestNoServerDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	for _, tags := range []string{"", "keymesh_adversary"} {
		out, err := exec.Command(goTool, "list", "-tags", tags, "-deps",
			"-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"/client").Output()
		if err != nil {
			t.Fatalf("go list -tags %q -deps ./client: %v", tags, err)
		}
		imports := map[string][]string{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			imports[f[0]] = f[1:]
		}
		if len(imports) == 0 {
			t.Fatalf("go list -deps ./client listed nothing")
		}
		for _, p := range slices.Sorted(maps.Keys(imports)) {
			if forbidden(p) {
				t.Errorf("tags %q: the SDK depends on server package %s (%s); move what the client needs into api or an allowed pure package (client/deps_test.go)",
					tags, p, strings.Join(chain(imports, module+"/client", p), " → "))
			}
		}
		for _, p := range imports[module+"/api"] {
			if strings.HasPrefix(p, module+"/") {
				t.Errorf("tags %q: package api imports %s: the wire definitions import nothing of this module", tags, p)
			}
		}
		for _, p := range imports[module+"/client"] {
			if p == "log" || p == "log/slog" {
				t.Errorf("tags %q: package client imports %s: the SDK never logs", tags, p)
			}
		}
	}
}

func forbidden(p string) bool {
	if p == module || strings.HasPrefix(p, module+"/") {
		return !slices.Contains(sdkAllowed, p)
	}
	for _, f := range sdkForbidden {
		if strings.HasPrefix(p, f) || p == strings.TrimSuffix(f, "/") {
			return true
		}
	}
	return false
}

// chain returns a shortest import path from one package to another.
func chain(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{from, "…", to}
}

// TestNoInternalTypesExported: the SDK's exported API names no type of an
// internal package (a caller could not name it, and it would tie the SDK
// to server code's changes): every exported declaration of package client
// — functions, methods of exported types, types (aliases included), struct
// fields, variables and constants — is checked for a qualified identifier
// of an internal/ import.
func TestNoInternalTypesExported(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		internal := map[string]string{} // import name → path
		for _, im := range f.Imports {
			path := strings.Trim(im.Path.Value, `"`)
			if !strings.Contains(path, "/internal/") && !strings.HasSuffix(path, "/internal") {
				continue
			}
			n := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				n = im.Name.Name
			}
			internal[n] = path
		}
		check := func(what string, n ast.Node) {
			ast.Inspect(n, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && internal[x.Name] != "" {
						t.Errorf("%s: exported %s names %s.%s (%s): use or add a type in package api", fset.Position(sel.Pos()), what, x.Name, sel.Sel.Name, internal[x.Name])
					}
				}
				return true
			})
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() || d.Recv != nil && !exportedRecv(d.Recv) {
					continue
				}
				check("func "+d.Name.Name, d.Type)
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					switch sp := sp.(type) {
					case *ast.TypeSpec:
						if !sp.Name.IsExported() {
							continue
						}
						if st, ok := sp.Type.(*ast.StructType); ok {
							for _, fl := range st.Fields.List {
								if len(fl.Names) == 0 || slices.ContainsFunc(fl.Names, (*ast.Ident).IsExported) {
									check("field of "+sp.Name.Name, fl.Type)
								}
							}
							continue
						}
						check("type "+sp.Name.Name, sp.Type)
					case *ast.ValueSpec:
						if slices.ContainsFunc(sp.Names, (*ast.Ident).IsExported) {
							check("value "+sp.Names[0].Name, sp)
						}
					}
				}
			}
		}
	}
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(fl *ast.FieldList) bool {
	if len(fl.List) == 0 {
		return false
	}
	x := fl.List[0].Type
	if s, ok := x.(*ast.StarExpr); ok {
		x = s.X
	}
	if ix, ok := x.(*ast.IndexExpr); ok {
		x = ix.X
	}
	id, ok := x.(*ast.Ident)
	return ok && id.IsExported()
}
