package broker

import (
	"fmt"
	"net/netip"

	"github.com/turnstilemq/turnstile/internal/event"
	"github.com/turnstilemq/turnstile/internal/packet"
)

// errBanned closes the connections a new ban matches; it is an administrative action (closeReason).
var errBanned = fmt.Errorf("banned: %w", errAdminClosed)

// EnforceBans applies the bans in force now (Options.Bans) to what is connected and stored: a
// session whose client id, user name or address (of its connection, or of the identity that
// last connected it) is banned loses its will and its pending delayed will, both suppressed as
// "banned", and its connection gets DISCONNECT 0x98 (administrative action) and closes. The
// session itself stays until it expires; its client cannot connect while the ban lasts. A
// CONNECT in progress is refused by its admission check, which runs under the same vhost lock
// (Vhost.admitLocked). Package app runs it after every ban and once at start.
func (s *Server) EnforceBans() {
	bans := s.opts.Bans
	if bans == nil {
		return
	}
	now := s.now()
	for _, v := range s.vhostList() {
		var wills []*will
		var closing []*client
		v.mu.Lock()
		for _, ss := range v.sessions {
			ss.mu.Lock()
			user, addr := "", netip.Addr{}
			if id := ss.identity; id != nil {
				user, addr = id.User, id.Remote
			}
			if c := ss.client; c != nil {
				addr = remoteIP(c.conn)
			}
			if _, banned := bans.Banned(ss.id, user, addr, now); !banned {
				ss.mu.Unlock()
				continue
			}
			changed := false
			if ss.will != nil {
				wills, ss.will, changed = append(wills, ss.will), nil, true
			}
			if pw := ss.pendingWill; pw != nil {
				stopTimer(&ss.willTimer)
				wills, ss.pendingWill, changed = append(wills, pw), nil, true
			}
			if changed && ss.persistent() {
				ss.saveLocked() // a restart must not bring the will back
			}
			if c := ss.client; c != nil {
				closing = append(closing, c)
			}
			ss.mu.Unlock()
		}
		v.mu.Unlock()
		for _, c := range closing {
			c.close(errBanned, packet.AdministrativeAction)
		}
		for _, w := range wills {
			v.suppressWill(w, event.WillBanned, "the client was banned")
		}
	}
}
