package transport

// This file runs three nodes as separate OS processes on loopback (issue
// 2's "done when"). The node daemon is not used: the test binary re-executes
// itself with KEYMESH_TRANSPORT_TEST_NODE set, and TestMain turns that
// process into a minimal node (helperNode): it loads its config file and
// identity key the way the daemon does, serves the transport on an
// inherited listener, answers the peer RPC "test/commit-reveal" by joining a
// commit-reveal session, and serves a tiny HTTP API on a second inherited
// listener through which the test drives sessions:
//
//	POST /run?parties=1,2,3   invite the other parties, run our own side,
//	                          answer {"outputs": {"1": hex, …}} or
//	                          {"error": …, "down_peer": N}
//	GET  /peers               transport.Peers() as JSON

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

const (
	helperEnv       = "KEYMESH_TRANSPORT_TEST_NODE" // config file path
	inviteKind      = "test/commit-reveal"
	helperTimeout   = 30 * time.Second
	helperPeerFD    = 3
	helperAPIFD     = 4
	helperPingEvery = 200 * time.Millisecond
)

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		if err := helperNode(path); err != nil {
			fmt.Fprintln(os.Stderr, "helper node:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// invite is the body of a test/commit-reveal call: nonce(32) ‖ n(1) ‖
// parties(2 each).
func encodeInvite(nonce []byte, parties []round.PartyID) []byte {
	b := append([]byte{}, nonce...)
	b = append(b, byte(len(parties)))
	for _, p := range parties {
		b = binary.BigEndian.AppendUint16(b, uint16(p))
	}
	return b
}

func decodeInvite(b []byte) (nonce []byte, parties []round.PartyID, err error) {
	if len(b) < 33 || len(b) != 33+2*int(b[32]) {
		return nil, nil, errors.New("malformed invitation")
	}
	for i := range int(b[32]) {
		parties = append(parties, round.PartyID(binary.BigEndian.Uint16(b[33+2*i:])))
	}
	return b[:32], parties, nil
}

func commitRevealSession(nonce []byte, self round.PartyID, parties []round.PartyID) (*round.Session, error) {
	sid, err := round.NewSessionID(mpctest.CommitRevealProtocol, parties, len(parties), nonce)
	if err != nil {
		return nil, err
	}
	return round.NewSession(sid, self, parties, mpctest.NewCommitReveal(sid, self, parties))
}

func helperNode(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	ident, created, err := config.LoadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		return err
	}
	if created {
		return errors.New("identity key was missing")
	}
	peerLn, err := net.FileListener(os.NewFile(helperPeerFD, "peer"))
	if err != nil {
		return err
	}
	apiLn, err := net.FileListener(os.NewFile(helperAPIFD, "api"))
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", cfg.ID)
	tr, err := New(Options{Self: cfg, Identity: ident, Logger: log, SessionTimeout: helperTimeout, PingInterval: helperPingEvery, PingTimeout: 3 * time.Second})
	if err != nil {
		return err
	}
	self := round.PartyID(cfg.ID)
	tr.Handle(inviteKind, func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		nonce, parties, err := decodeInvite(body)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(parties, round.PartyID(from)) {
			return nil, errors.New("inviter is not a party")
		}
		s, err := commitRevealSession(nonce, self, parties)
		if err != nil {
			return nil, err
		}
		out, err := tr.RunSession(ctx, s)
		if err != nil {
			return nil, err
		}
		x := out.([32]byte)
		return x[:], nil
	})
	go tr.Serve(context.Background(), peerLn)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /peers", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(tr.Peers())
	})
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, r *http.Request) {
		var parties []round.PartyID
		for _, s := range strings.Split(r.URL.Query().Get("parties"), ",") {
			p, err := strconv.ParseUint(s, 10, 16)
			if err != nil {
				http.Error(w, "bad parties", http.StatusBadRequest)
				return
			}
			parties = append(parties, round.PartyID(p))
		}
		json.NewEncoder(w).Encode(drive(r.Context(), tr, self, parties))
	})
	return http.Serve(apiLn, mux)
}

type runReply struct {
	Outputs  map[uint16]string `json:"outputs,omitempty"`
	Error    string            `json:"error,omitempty"`
	DownPeer uint16            `json:"down_peer,omitempty"`
}

// drive invites every other party and runs our own side of one session.
func drive(ctx context.Context, tr *Transport, self round.PartyID, parties []round.PartyID) runReply {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	s, err := commitRevealSession(nonce, self, parties)
	if err != nil {
		return runReply{Error: err.Error()}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	invite := encodeInvite(nonce, parties)
	var mu sync.Mutex
	var wg sync.WaitGroup
	outs := map[uint16]string{}
	var errs []error
	record := func(p round.PartyID, out []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			cancel() // one failure ends the run everywhere
			return
		}
		outs[uint16(p)] = hex.EncodeToString(out)
	}
	for _, p := range parties {
		if p == self {
			continue
		}
		wg.Go(func() {
			out, err := tr.Call(ctx, uint16(p), inviteKind, invite)
			record(p, out, err)
		})
	}
	wg.Go(func() {
		out, err := tr.RunSession(ctx, s)
		var b []byte
		if err == nil {
			x := out.([32]byte)
			b = x[:]
		}
		record(self, b, err)
	})
	wg.Wait()
	if len(errs) == 0 {
		return runReply{Outputs: outs}
	}
	rep := runReply{Error: errors.Join(errs...).Error()}
	for _, err := range errs {
		var pd *PeerDownError
		if errors.As(err, &pd) {
			rep.DownPeer = pd.Peer
			break
		}
	}
	return rep
}

// procNode is one helper node process as the test sees it.
type procNode struct {
	id  uint16
	cmd *exec.Cmd
	api string
	log *strings.Builder
}

func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	nodes, err := config.InitCluster(config.InitOptions{Nodes: 3, Threshold: 2, Out: dir, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	// Bind every port now and hand the listeners to the processes, so no
	// other program can take a port in between.
	peerLns, apiLns := make([]*net.TCPListener, 3), make([]*net.TCPListener, 3)
	for i := range 3 {
		peerLns[i] = listen(t).(*net.TCPListener)
		apiLns[i] = listen(t).(*net.TCPListener)
		nodes[i].PeerListen = peerLns[i].Addr().String()
		nodes[i].APIListen = apiLns[i].Addr().String()
	}
	for _, n := range nodes {
		for j := range n.Peers {
			k := n.Peers[j].ID - 1
			n.Peers[j].PeerAddr = nodes[k].PeerListen
			n.Peers[j].APIURL = "http://" + nodes[k].APIListen
		}
	}
	if err := config.WriteCluster(dir, nodes); err != nil {
		t.Fatal(err)
	}
	procs := make([]*procNode, 3)
	for i := range 3 {
		procs[i] = startProc(t, uint16(i+1), filepath.Join(dir, config.FileName(uint16(i+1))), peerLns[i], apiLns[i])
	}
	for _, p := range procs {
		p.waitPeers(t, func(st PeerStatus) bool { return st.Reachable })
	}

	all := procs[0].run(t, "1,2,3")
	assertAgree(t, all, 3)
	assertAgree(t, procs[1].run(t, "2,3"), 2)

	// SIGKILL node 3.
	if err := procs[2].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	procs[2].cmd.Wait()

	assertAgree(t, procs[0].run(t, "1,2"), 2)
	start := time.Now()
	rep := procs[0].run(t, "1,2,3")
	elapsed := time.Since(start)
	if rep.Error == "" || rep.DownPeer != 3 {
		t.Fatalf("3-party session with node 3 dead: %+v, want an error naming peer 3", rep)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("failing took %v with a %v session timeout", elapsed, helperTimeout)
	}
	t.Logf("3-party session failed after %v: %s", elapsed, rep.Error)
	procs[0].waitPeers(t, func(st PeerStatus) bool { return st.Reachable == (st.ID != 3) })
}

func startProc(t *testing.T, id uint16, cfgPath string, peerLn, apiLn *net.TCPListener) *procNode {
	t.Helper()
	pf, err := peerLn.File()
	if err != nil {
		t.Fatal(err)
	}
	af, err := apiLn.File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+cfgPath)
	cmd.ExtraFiles = []*os.File{pf, af} // fds 3 and 4
	log := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child has its own copies now.
	pf.Close()
	af.Close()
	peerLn.Close()
	apiLn.Close()
	p := &procNode{id: id, cmd: cmd, api: "http://" + apiLn.Addr().String(), log: log}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("node %d output:\n%s", id, log.String())
		}
	})
	return p
}

func (p *procNode) run(t *testing.T, parties string) runReply {
	t.Helper()
	resp, err := http.Post(p.api+"/run?parties="+parties, "", nil)
	if err != nil {
		t.Fatalf("node %d: %v", p.id, err)
	}
	defer resp.Body.Close()
	var rep runReply
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("node %d: %v: %s", p.id, err, body)
	}
	return rep
}

func (p *procNode) waitPeers(t *testing.T, ok func(PeerStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last []PeerStatus
	for time.Now().Before(deadline) {
		last = nil
		if resp, err := http.Get(p.api + "/peers"); err == nil {
			json.NewDecoder(resp.Body).Decode(&last)
			resp.Body.Close()
			good := len(last) > 0
			for _, st := range last {
				good = good && ok(st)
			}
			if good {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node %d: peers never reached the expected state: %+v", p.id, last)
}

func assertAgree(t *testing.T, rep runReply, n int) {
	t.Helper()
	if rep.Error != "" || len(rep.Outputs) != n {
		t.Fatalf("run: %+v", rep)
	}
	var first string
	for _, o := range rep.Outputs {
		if first == "" {
			first = o
		}
		if o != first || o == strings.Repeat("0", 64) {
			t.Fatalf("outputs differ or are zero: %v", rep.Outputs)
		}
	}
}
