// Command mochi runs github.com/mochi-mqtt/server/v2 on one TCP port with every client allowed and
// only warnings logged, as the Mochi peer of bench/compare. With -ledger it logs clients in by
// Mochi's auth ledger instead (a JSON or YAML file of users and their plaintext passwords, which
// Mochi compares as they are: it has no password hashing), as the peer of bench/logins. It lives in its own module so that the
// Turnstile module never depends on Mochi.
package main

import (
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1883", "TCP `address` to listen on")
	ledger := flag.String("ledger", "", "auth ledger `file` (JSON or YAML) of Mochi's auth hook; every client allowed when empty")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	server := mqtt.New(&mqtt.Options{
		Logger: logger,
		// $SYS is left at Mochi's default interval: it is part of what Mochi does when it runs.
	})
	if *ledger == "" {
		if err := server.AddHook(new(auth.AllowHook), nil); err != nil {
			log.Fatal(err)
		}
	} else {
		data, err := os.ReadFile(*ledger)
		if err != nil {
			log.Fatal(err)
		}
		if err := server.AddHook(new(auth.Hook), &auth.Options{Data: data}); err != nil {
			log.Fatal(err)
		}
	}
	if err := server.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: *addr})); err != nil {
		log.Fatal(err)
	}
	if err := server.Serve(); err != nil {
		log.Fatal(err)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
	server.Close()
}
