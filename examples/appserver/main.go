// Command appserver runs the example application server of the token model; see
// docs/tokens.md, "Running the example".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/turnstilemq/turnstile/examples/appserver/appserver"
)

func main() {
	var cfg appserver.Config
	var devices string
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:8081", "address to listen on")
	flag.StringVar(&cfg.Tokens.Endpoint, "endpoint", "http://127.0.0.1:8089/", "token API base URL")
	flag.StringVar(&cfg.Tokens.InstanceID, "instance", "/", "InstanceId: the vhost of the tokens")
	flag.StringVar(&cfg.Tokens.CacheFile, "cache", "appserver-tokens.json", "token cache file")
	flag.StringVar(&devices, "devices", "dev1=secret1", "device=secret pairs, comma-separated")
	flag.Parse()
	cfg.Tokens.AccessKeyID = os.Getenv("TURNSTILE_ACCESS_KEY_ID")
	cfg.Tokens.AccessKeySecret = os.Getenv("TURNSTILE_ACCESS_KEY_SECRET")
	cfg.AdminSecret = os.Getenv("APPSERVER_ADMIN_SECRET")
	cfg.Devices = map[string]string{}
	for _, pair := range strings.Split(devices, ",") {
		if id, secret, ok := strings.Cut(pair, "="); ok {
			cfg.Devices[id] = secret
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := appserver.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "appserver:", err)
		os.Exit(1)
	}
}
