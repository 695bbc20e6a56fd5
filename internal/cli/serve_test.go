package cli

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/logbuf"
)

func gogcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// The table serve grows at start: max_connections and 1,024 more, at most maxFDTable.
func TestFDTableSize(t *testing.T) {
	for _, c := range []struct{ maxConns, want int }{
		{0, maxFDTable}, // no limit
		{1, 1025},
		{10_000, 11_024},
		{maxFDTable - 1024, maxFDTable},
		{maxFDTable - 1023, maxFDTable},
		{100_000, maxFDTable}, // the default
		{math.MaxInt, maxFDTable},
	} {
		if got := fdTableSize(c.maxConns); got != c.want {
			t.Errorf("fdTableSize(%d) = %d, want %d", c.maxConns, got, c.want)
		}
	}
}

// serve keeps the collector's floor (internal/heapfloor) while it runs, unless GOGC is set in the
// environment, says which on its start line, and puts GOGC back when it stops.
func TestServeStartsTheHeapFloor(t *testing.T) {
	for _, c := range []struct {
		gogc     string // "" for unset
		wantLine string
		raised   bool // GOGC above 100 while serve runs (this test process's live heap is small)
	}{
		{"", "heap_floor_mib=16", true},
		{"150", "gogc=150", false}, // the runtime read GOGC at start; the floor leaves it alone
	} {
		t.Run("GOGC="+c.gogc, func(t *testing.T) {
			t.Setenv("GOGC", c.gogc)
			if c.gogc == "" {
				os.Unsetenv("GOGC")
			}
			dir := t.TempDir()
			// No listener (port 0 turns the MQTT listener off): nothing else in the test opens one.
			path := writeFile(t, "turnstile.ini", "[main]\ndata_dir = "+filepath.Join(dir, "data")+
				"\n[mqtt]\nport = 0\nws_port = -1\n[mgmt]\nport = -1\n")
			before := gogcPercent()
			ctx, cancel := context.WithCancel(context.Background())
			var out, errb logbuf.Buffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, []string{"serve", "--config", path}, &out, &errb) }()
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(errb.String(), "state recovered") {
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("serve did not start in 20 s; stderr:\n%s", errb.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			var start string
			for _, l := range strings.Split(errb.String(), "\n") {
				if strings.Contains(l, `msg="starting turnstile"`) {
					start = l
				}
			}
			if !strings.Contains(start, c.wantLine) {
				t.Errorf("start line %q, want it to contain %q", start, c.wantLine)
			}
			checkFDTable(t, start)
			if g := gogcPercent(); (g > 100) != c.raised {
				t.Errorf("GOGC while serving = %d (before %d); raised above 100: %v, want %v", g, before, g > 100, c.raised)
			}
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("serve exited %d; stderr:\n%s", code, errb.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not stop within 20 s of its context")
			}
			if g := gogcPercent(); g != before {
				t.Errorf("GOGC after serve = %d, want %d as before", g, before)
			}
		})
	}
}
