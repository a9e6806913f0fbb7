package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/record"
)

// TestAdmission: the admission policy is "open" or "approved" with valid,
// distinct developer keys; cluster init writes it the same into every
// node's file, and Load reads it back.
func TestAdmission(t *testing.T) {
	k, err := record.GenerateKey(record.P256)
	if err != nil {
		t.Fatal(err)
	}
	key := k.Public().String()
	for _, a := range []*Admission{nil, {Policy: AdmissionOpen}, {Policy: AdmissionApproved, DeveloperKeys: []string{key}}} {
		n := validNode()
		n.Admission = a
		got, err := Parse(mustJSON(t, n))
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if got.Admission.Approved() != (a != nil && a.Policy == AdmissionApproved) || len(got.Admission.Keys()) != len(n.Admission.Keys()) {
			t.Fatalf("%+v read back as %+v", a, got.Admission)
		}
	}
	for name, c := range map[string]struct {
		a      Admission
		errHas string
	}{
		"no policy":         {Admission{}, "want \"open\" or \"approved\""},
		"unknown policy":    {Admission{Policy: "closed"}, "want"},
		"approved, no keys": {Admission{Policy: AdmissionApproved}, "needs developer_keys"},
		"open with keys":    {Admission{Policy: AdmissionOpen, DeveloperKeys: []string{key}}, "takes no developer_keys"},
		"bad key":           {Admission{Policy: AdmissionApproved, DeveloperKeys: []string{"p256:AAAA"}}, "developer_keys[0]"},
		"no algorithm":      {Admission{Policy: AdmissionApproved, DeveloperKeys: []string{"AAAA"}}, "developer_keys[0]"},
		"twice":             {Admission{Policy: AdmissionApproved, DeveloperKeys: []string{key, key}}, "appears twice"},
	} {
		n := validNode()
		n.Admission = &c.a
		_, err := Parse(mustJSON(t, n))
		if err == nil || !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("%s: %v, want %q", name, err, c.errHas)
		}
	}

	dir := t.TempDir()
	adm := &Admission{Policy: AdmissionApproved, DeveloperKeys: []string{key}}
	nodes, err := InitCluster(InitOptions{Nodes: 3, Threshold: 2, Out: dir, BasePort: 1, SkipPortCheck: true, Admission: adm})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCluster(dir, nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		got, err := Load(filepath.Join(dir, FileName(n.ID)))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Admission.Approved() || len(got.Admission.DeveloperKeys) != 1 || got.Admission.DeveloperKeys[0] != key {
			t.Fatalf("node %d's file holds admission %+v", n.ID, got.Admission)
		}
	}
}
