package broker

import (
	"strconv"
	"time"
)

// sysLoop publishes each vhost's statistics under $SYS/broker/ every interval, with mosquitto's
// topic names, as retained QoS 0 messages.
func (s *Server) sysLoop(interval time.Duration) {
	defer s.bg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			vs := make([]*Vhost, 0, len(s.vhosts))
			for _, v := range s.vhosts {
				vs = append(vs, v)
			}
			s.mu.Unlock()
			for _, v := range vs {
				v.publishSys()
			}
		}
	}
}

// SysStats is a snapshot of a vhost's statistics.
type SysStats struct {
	ClientsConnected int
	Sessions         int
	MessagesReceived uint64 // PUBLISH packets received
	MessagesSent     uint64 // PUBLISH packets sent
	BytesReceived    uint64
	BytesSent        uint64
	Dropped          uint64
	Retained         int
	Subscriptions    int
	Queued           int               // QoS 1/2 messages waiting in sessions, in memory and in the store
	DroppedBy        map[string]uint64 // Dropped by reason
}

// Stats sums the counters of the ended connections and of the live ones.
func (v *Vhost) Stats() SysStats {
	st := SysStats{
		MessagesReceived: v.stats.msgsIn.Load(),
		MessagesSent:     v.stats.msgsOut.Load(),
		BytesReceived:    v.stats.bytesIn.Load(),
		BytesSent:        v.stats.bytesOut.Load(),
		Dropped:          v.stats.totalDropped(),
		Retained:         v.retained.Len(),
		Subscriptions:    v.index.Len(),
	}
	st.DroppedBy = make(map[string]uint64, numDropReasons)
	for r := range numDropReasons {
		st.DroppedBy[r.String()] = v.stats.dropped[r].Load()
	}
	v.mu.Lock()
	st.ClientsConnected = len(v.clients)
	st.Sessions = len(v.sessions)
	for _, ss := range v.sessions {
		ss.mu.Lock()
		st.Queued += ss.qlen() + ss.spilled
		ss.mu.Unlock()
	}
	for c := range v.clients {
		st.MessagesReceived += c.msgsIn.Load()
		st.BytesReceived += c.bytesIn.Load()
		st.BytesSent += c.bytesOut.Load()
		c.out.mu.Lock()
		st.MessagesSent += c.out.msgsOut
		c.out.mu.Unlock()
	}
	v.mu.Unlock()
	return st
}

func (v *Vhost) publishSys() {
	st := v.Stats()
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	i := func(n int) string { return strconv.Itoa(n) }
	uptime := int64(v.srv.now().Sub(v.srv.started) / time.Second)
	values := [...]struct{ topic, value string }{
		{"$SYS/broker/version", "turnstile " + v.srv.opts.Version},
		{"$SYS/broker/uptime", strconv.FormatInt(uptime, 10) + " seconds"},
		{"$SYS/broker/clients/connected", i(st.ClientsConnected)},
		{"$SYS/broker/clients/total", i(st.Sessions)},
		{"$SYS/broker/messages/received", u(st.MessagesReceived)},
		{"$SYS/broker/messages/sent", u(st.MessagesSent)},
		{"$SYS/broker/publish/messages/received", u(st.MessagesReceived)},
		{"$SYS/broker/publish/messages/sent", u(st.MessagesSent)},
		{"$SYS/broker/publish/messages/dropped", u(st.Dropped)},
		{"$SYS/broker/bytes/received", u(st.BytesReceived)},
		{"$SYS/broker/bytes/sent", u(st.BytesSent)},
		{"$SYS/broker/retained messages/count", i(st.Retained)},
		{"$SYS/broker/subscriptions/count", i(st.Subscriptions)},
	}
	for _, kv := range values {
		v.publishServer(&Message{Topic: kv.topic, Payload: []byte(kv.value), Retain: true})
	}
}
