package broker

// Ready reports whether the server accepts MQTT connections: it is not shutting down and at
// least one listener has been handed to Serve. The management API's readiness probe
// (GET /api/health/ready) answers with it.
func (s *Server) Ready() bool {
	if s.shuttingDown.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners) > 0
}
