package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path, ctype, body string
		status            int
	}{
		{"/login", "text/html", `<script src="/login/login.js">`, 200},
		{"/login/", "text/html", "navigator", 0},
		{"/login/login.js", "javascript", "navigator.credentials.create", 200},
		{"/login/nope.js", "", "", 404},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tc.status != 0 && resp.StatusCode != tc.status {
			t.Errorf("%s: status %d", tc.path, resp.StatusCode)
		}
		if tc.status == 200 {
			if !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.body) {
				t.Errorf("%s: %s %q", tc.path, resp.Header.Get("Content-Type"), b[:min(len(b), 80)])
			}
			if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("%s: no CSP", tc.path)
			}
		}
	}
}
