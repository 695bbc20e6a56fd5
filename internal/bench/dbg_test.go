package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestDbg(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Port = 21883
	cfg.Scenario = Pub
	cfg.QoS = 2
	cfg.Clients = 1
	cfg.Duration = 500 * time.Millisecond
	r, err := Run(context.Background(), cfg, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	r.WriteText(os.Stderr)
}
