// Command turnstile is the Turnstile MQTT broker. The subcommands (serve, validate-config, version)
// live in internal/cli; this file only hands over the arguments and exits with the status they give.
package main

import (
	"os"

	"github.com/turnstilemq/turnstile/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
