package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// testNode serves a node API with a fixed keymesh_nodeInfo.
func testNode() *httptest.Server {
	reg := httpapi.NewRegistry()
	httpapi.RegisterNode(reg, func(context.Context) (*api.NodeInfo, error) {
		return &api.NodeInfo{NodeID: 1, ClusterID: "km-example", Threshold: 2, N: 3, Version: "devel",
			Peers: []api.PeerInfo{{ID: 2, Reachable: true}, {ID: 3, Reachable: false}}}, nil
	})
	return httptest.NewServer(httpapi.NewHandler(httpapi.Options{
		Registry: reg,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready: func(context.Context) api.ReadyStatus {
			return api.ReadyStatus{Ready: false, Threshold: 2, Reachable: 1, Down: []uint16{2, 3}}
		},
	}))
}

func Example() {
	srv := testNode()
	defer srv.Close()

	c, err := client.New(srv.URL)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	info, err := c.NodeInfo(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("node %d of %s, threshold %d of %d\n", info.NodeID, info.ClusterID, info.Threshold, info.N)
	for _, p := range info.Peers {
		fmt.Printf("peer %d reachable: %v\n", p.ID, p.Reachable)
	}

	// Errors from the node are *api.Error values.
	err = c.Call(ctx, "keymesh_noSuchMethod", nil, nil)
	var e *api.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Message)
	}
	// Output:
	// node 1 of km-example, threshold 2 of 3
	// peer 2 reachable: true
	// peer 3 reachable: false
	// -32601 method not found
}

func TestErrors(t *testing.T) {
	srv := testNode()
	defer srv.Close()
	c, err := client.New(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var e *api.Error
	err = c.Call(ctx, api.MethodNodeInfo, []int{1}, nil)
	if !errors.As(err, &e) || e.Code != api.CodeInvalidParams {
		t.Fatalf("invalid params: %v", err)
	}
	// Oversize request: the node answers 413 with a JSON-RPC error.
	err = c.Call(ctx, api.MethodNodeInfo, map[string]string{"x": strings.Repeat("a", api.MaxBodyBytes)}, nil)
	if !errors.As(err, &e) || e.Code != api.CodeLimitExceeded {
		t.Fatalf("oversize: %v", err)
	}
	st, err := c.Ready(ctx)
	if err != nil || st.Ready || len(st.Down) != 2 {
		t.Fatalf("Ready: %+v %v", st, err)
	}

	for _, bad := range []string{"", "ftp://x", "http://", "http://h/?q=1", "http://u:p@h", "://"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

// TestBadResponses: the client refuses a response that is not JSON-RPC or
// answers another id, instead of returning garbage.
func TestBadResponses(t *testing.T) {
	for name, body := range map[string]string{
		"not json":   `<html>`,
		"wrong id":   `{"jsonrpc":"2.0","id":999,"result":{}}`,
		"no version": `{"id":1,"result":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, body)
			}))
			defer srv.Close()
			c, _ := client.New(srv.URL)
			var out json.RawMessage
			err := c.Call(context.Background(), "m", nil, &out)
			var e *api.Error
			if err == nil || errors.As(err, &e) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
