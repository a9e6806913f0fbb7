package audit

import (
	"strings"
	"testing"
	"time"
)

// TestCrossCheckFindsSkippedAppend plays node 2 signing without logging:
// nodes 1 and 3 log a signature (node 1 the gateway, nodes 2 and 3 the
// co-signers) and a key generation of all three; node 2 logs the key
// generation only. CrossCheck over the three logs names node 2 and the
// signature's request, and nothing else. A refused attempt naming a node
// that logged nothing, and entries younger than Grace, are not reported.
// (CrossCheck reads entries only; cli's TestAuditCrossCheck reads them
// from real stores.)
func TestCrossCheckFindsSkippedAppend(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	logs := map[uint16][]*Entry{}
	appendTo := func(id uint16, kind string, req byte, signers []uint16, outcome string) {
		e := &Entry{Kind: kind, Scope: "s", Account: "a", Method: "personal_sign", Signers: signers, Outcome: outcome}
		e.Request[0] = req
		e.Seq = uint64(len(logs[id]) + 1)
		e.Time = t0.Add(time.Duration(e.Seq) * time.Second)
		logs[id] = append(logs[id], e)
	}
	all := []uint16{1, 2, 3}
	// A key generation: every party logs it.
	appendTo(1, KindKeygen, 1, all, OutcomeOK)
	appendTo(2, KindKeygenPeer, 1, all, OutcomeOK)
	appendTo(3, KindKeygenPeer, 1, all, OutcomeOK)
	// A signature by {1,2,3}… node 2 skips its entry.
	appendTo(1, KindSign, 2, all, OutcomeOK)
	appendTo(3, KindCosign, 2, all, OutcomeOK)
	// An attempt with {1,2} refused busy by 2 (which logs nothing), then
	// the same request signed by {1,3}.
	appendTo(1, KindSign, 3, []uint16{1, 2}, OutcomeRefused)
	appendTo(1, KindSign, 3, []uint16{1, 3}, OutcomeOK)
	appendTo(3, KindCosign, 3, []uint16{1, 3}, OutcomeOK)
	// Every log goes on long enough for these requests to be judged.
	for id := range uint16(3) {
		appendTo(id+1, KindRecord, 9, nil, OutcomeOK)
		logs[id+1][len(logs[id+1])-1].Time = t0.Add(time.Hour)
	}
	skips := CrossCheck(logs, Grace)
	if len(skips) != 1 || skips[0].Node != 2 || skips[0].Request[0] != 2 || skips[0].By != 1 {
		t.Fatalf("want node 2's skipped co-sign of request 2 only, got %v", skips)
	}
	if s := skips[0].String(); !strings.Contains(s, "node 2 has no entry for request 02") || !strings.Contains(s, "node 1's entry 2 (wallet.sign") {
		t.Fatalf("%s", s)
	}
	// Young entries are not judged yet: a new signature that node 2 has
	// not logged, within Grace of the logs' ends.
	appendTo(1, KindSign, 4, []uint16{1, 2}, OutcomeOK)
	logs[1][len(logs[1])-1].Time = t0.Add(time.Hour)
	if skips := CrossCheck(logs, Grace); len(skips) != 1 {
		t.Fatalf("a request younger than Grace judged: %v", skips)
	}
	// A node whose log is not given is not judged.
	delete(logs, 2)
	if skips := CrossCheck(logs, Grace); len(skips) != 0 {
		t.Fatalf("node 2's log was not given: %v", skips)
	}
}
