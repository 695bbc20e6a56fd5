// Command device runs the example device of the token model; see docs/tokens.md, "Running the
// example".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/turnstilemq/turnstile/examples/device/device"
)

func main() {
	var cfg device.Config
	flag.StringVar(&cfg.AppServer, "appserver", "http://127.0.0.1:8081", "application server URL")
	flag.StringVar(&cfg.Broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	flag.StringVar(&cfg.Device, "device", "dev1", "device id")
	flag.BoolVar(&cfg.SubscribeNotices, "subscribe-notices", false, "subscribe to the $SYS notices (listener notice mode \"subscribed\")")
	flag.DurationVar(&cfg.RefreshLead, "refresh-lead", 0, "refresh the token this long before it expires (default 1m)")
	flag.DurationVar(&cfg.PublishEvery, "every", 0, "publish interval (default 5s)")
	flag.Parse()
	cfg.Secret = os.Getenv("DEVICE_SECRET")
	cfg.OnMessage = func(topic string, payload []byte) { fmt.Printf("%s %s\n", topic, payload) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := device.Run(ctx, cfg)
	switch {
	case errors.Is(err, device.ErrCutOff):
		fmt.Println("device: cut off by the application server (token revoked); exiting")
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
