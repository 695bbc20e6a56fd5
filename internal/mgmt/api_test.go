package mgmt

import "testing"

// TestAPI runs every endpoint through real HTTP against one running broker (one broker for
// all, since starting one costs a default-cost bcrypt hash, slow under -race). The subtests
// run in order and use their own names, users and vhosts; the last one closes the broker.
func TestAPI(t *testing.T) {
	e := startEnv(t, nil, false)
	t.Run("health before the broker listens", func(t *testing.T) { testHealth(e.with(t)) })
	e.listen()
	tests := []struct {
		name string
		fn   func(*env)
	}{
		{"ready", testReady},
		{"access by tag", testAccessByTag},
		{"management sees its own vhosts", testManagementSeesOwnVhosts},
		{"404 and 405", testNotFoundAndMethodNotAllowed},
		{"host and origin", testHostAndOrigin},
		{"host allow-list", testHostAllowList},
		{"logins answer alike", testLoginsAnswerAlike},
		{"vhost limits", testVhostLimits},
		{"user limits", testUserLimits},
		{"bans", testBans},
		{"body limits", testBodyLimits},
		{"login rules", testLoginRules},
		{"users", testUsers},
		{"vhosts", testVhosts},
		{"permissions", testPermissions},
		{"topic permissions", testTopicPermissions},
		{"connections and close", testConnectionsAndClose},
		{"sessions", testSessions},
		{"retained", testRetained},
		{"visibility by read permission", testVisibilityByReadPermission},
		{"definitions", testDefinitions},
		{"metrics move", testMetricsMove},
		{"metric names", testMetricNames},
		{"collector is pedantic-clean", testCollectorPedantic},
		{"not ready after close", testNotReadyAfterClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(e.with(t)) })
	}
}
