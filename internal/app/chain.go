package app

import (
	"fmt"
	"strings"

	"github.com/turnstilemq/turnstile/internal/auth"
	"github.com/turnstilemq/turnstile/internal/config"
)

// buildChain assembles the authentication chain of [main] auth_backends: one chain for every
// login, MQTT and the management API alike, with one rate limiter and one verification cache.
// Certificate login, when on, comes first; anonymous access, when on, last.
func buildChain(cfg *config.Config, users *auth.Users) (*auth.Chain, error) {
	loopbackOnly := ""
	if cfg.Main.DefaultUserOnlyLoopback {
		loopbackOnly = cfg.Main.DefaultUser
	}
	var providers []auth.Provider
	if cfg.MQTT.TLSCertLogin {
		providers = append(providers, &auth.Cert{Users: users, DefaultUserOnlyLoopback: loopbackOnly})
	}
	for _, name := range strings.Split(cfg.Main.AuthBackends, ",") {
		switch strings.TrimSpace(name) {
		case "local":
			local, err := auth.NewLocal(users, auth.LocalOptions{DefaultUserOnlyLoopback: loopbackOnly})
			if err != nil {
				return nil, err
			}
			providers = append(providers, local)
		default:
			return nil, fmt.Errorf("[main] auth_backends: unknown provider %q", name)
		}
	}
	if cfg.MQTT.AllowAnonymous {
		providers = append(providers, &auth.Anonymous{User: cfg.MQTT.AnonymousUser, Users: users, DefaultUserOnlyLoopback: loopbackOnly})
	}
	return auth.NewChain(providers...), nil
}
