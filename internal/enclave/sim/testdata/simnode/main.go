// Command simnode is a tiny program for the sim backend's two-binary tests:
// built twice with different -X main.build values it gives two measurements.
//
//	simnode -dir D measure
//	simnode -dir D -label L seal  <plaintext >sealed-hex
//	simnode -dir D -label L unseal <sealed-hex >plaintext
//	simnode -dir D -label L -peer M migrate-in
//	simnode -dir D -label L -peer M -req F migrate-out <sealed-hex >bundle-hex
//
// migrate-in writes the hex request as the first stdout line, reads the hex
// bundle as one stdin line, and writes the resealed secret (hex) as the
// second stdout line.
package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/enclave/sim"
)

var build = "dev"

func main() {
	dir := flag.String("dir", "", "platform dir")
	label := flag.String("label", "test", "seal label")
	peer := flag.String("peer", "", "the other build's measurement (hex)")
	reqFile := flag.String("req", "", "migration request file (hex)")
	flag.Parse()
	if err := run(*dir, *label, *peer, *reqFile, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dir, label, peer, reqFile, cmd string) error {
	b, err := sim.Open(sim.Config{Dir: dir})
	if err != nil {
		return err
	}
	switch cmd {
	case "measure":
		fmt.Println(b.Measurement(), build)
		return nil
	case "seal":
		in, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}
		out, err := b.Seal(in, label)
		if err != nil {
			return err
		}
		fmt.Println(hex.EncodeToString(out))
		return nil
	case "unseal":
		in, err := readHex(os.Stdin)
		if err != nil {
			return err
		}
		out, err := b.Unseal(in, label)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(out)
		return err
	case "migrate-in":
		m, err := enclave.ParseMeasurement(peer)
		if err != nil {
			return err
		}
		t, req, err := enclave.NewMigrationTarget(b)
		if err != nil {
			return err
		}
		fmt.Println(hex.EncodeToString(req))
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return err
		}
		bundle, err := hex.DecodeString(strings.TrimSpace(line))
		if err != nil {
			return err
		}
		secrets, err := t.Import(bundle, b.LocalVerifier(m))
		if err != nil {
			return err
		}
		fmt.Println(hex.EncodeToString(secrets[0].Sealed))
		return nil
	case "migrate-out":
		m, err := enclave.ParseMeasurement(peer)
		if err != nil {
			return err
		}
		reqHex, err := os.ReadFile(reqFile)
		if err != nil {
			return err
		}
		req, err := hex.DecodeString(strings.TrimSpace(string(reqHex)))
		if err != nil {
			return err
		}
		sealed, err := readHex(os.Stdin)
		if err != nil {
			return err
		}
		bundle, err := enclave.ExportMigration(b, req, b.LocalVerifier(m), []enclave.Secret{{Label: label, Sealed: sealed}})
		if err != nil {
			return err
		}
		fmt.Println(hex.EncodeToString(bundle))
		return nil
	}
	return fmt.Errorf("simnode: unknown command %q (build %s)", cmd, build)
}

func readHex(r io.Reader) ([]byte, error) {
	in, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(strings.TrimSpace(string(in)))
}
