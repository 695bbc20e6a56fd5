// Command gensample writes config.Sample(), the commented sample configuration, to the file named
// by -o. It runs from go generate in internal/config.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/turnstilemq/turnstile/internal/config"
)

func main() {
	out := flag.String("o", "", "output `file`")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gensample -o FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(*out, config.Sample(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gensample:", err)
		os.Exit(1)
	}
}
