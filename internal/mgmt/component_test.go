package mgmt

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// testComponent runs Component as broker.Run would: disabled on port 0, serving on a real
// port with the Go and process collectors beside the broker's, shut down by its context.
func testComponent(e *env) {
	t := e.t
	cfg := *e.cfg
	cfg.Mgmt.Port = 0
	if err := Component(&cfg, e.log)(t.Context(), e.srv); err != nil {
		t.Fatalf("disabled component: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mgmt.Bind, cfg.Mgmt.Port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	// The port is taken: the component fails, naming the key.
	if err := Component(&cfg, e.log)(t.Context(), e.srv); err == nil || !strings.Contains(err.Error(), "[mgmt] port") {
		t.Fatalf("component on a taken port: %v", err)
	}
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Component(&cfg, e.log)(ctx, e.srv) }()
	base := "http://127.0.0.1:" + strconv.Itoa(cfg.Mgmt.Port)
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	eventually(t, "the component serving", func() bool { code, _ := get("/api/health"); return code == 200 })
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "turnstile_connections ") {
		t.Fatalf("component /metrics: %d\n%.500s", code, body)
	}
	if code, _ := get("/api/overview"); code != 401 {
		t.Fatalf("component /api/overview without credentials: %d", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("component after cancel: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("component did not return after its context was cancelled")
	}
	if code, _ := get("/api/health"); code != 0 {
		t.Fatal("still serving after shutdown")
	}
}
