package httpapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestUncleanPathsNameTheirOwnKey: "a//b" and "a/../b" are keys like any
// other; the API must not clean or redirect them to another key.
func TestUncleanPathsNameTheirOwnKey(t *testing.T) {
	env := startEnv(t, nil)
	hc := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, key := range []string{"a//b", "a/../b", "./c", "d/./e"} {
		req, _ := http.NewRequest(http.MethodPut, env.url+"/v1/kv/"+key, strings.NewReader("v:"+key))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("PUT %q: %d", key, resp.StatusCode)
		}
		resp, err = hc.Get(env.url + "/v1/kv/" + key)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "v:"+key {
			t.Fatalf("GET %q: %d %q", key, resp.StatusCode, b)
		}
	}
	resp, err := hc.Post(env.url+"/v1/kv/x", "text/plain", strings.NewReader("v"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") == "" || resp.Header.Get(HeaderToken) == "" {
		t.Fatalf("POST on a key: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
