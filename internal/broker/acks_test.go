package broker

import (
	"errors"
	"net"
	"testing"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// TestPendingAcksBounded: acknowledgements held for the store never exceed receive_maximum. A
// v5 client over the limit is disconnected with 0x93 [MQTT-3.3.4-7]; a 3.1.1 client waits until
// the held acknowledgements are durable and sent.
func TestPendingAcksBounded(t *testing.T) {
	o := testOptions(t, t.TempDir())
	o.Limits.ReceiveMax = 4
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(t.Context())
	for _, v := range []packet.Version{packet.V5, packet.V311} {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := newClient(srv, a, pipeListener)
		c.version = v
		t0 := srv.persist.st.PutDefinitions([]byte("{}"))
		for i := range 3 {
			c.acks = append(c.acks, pendingAck{ticket: t0, t: packet.PUBACK, pid: uint16(i + 1)})
		}
		c.ackWaitingFor = t0
		if err := c.limitPendingAcks(); err != nil {
			t.Fatalf("v%d: 3 held acknowledgements under a limit of 4: %v", v, err)
		}
		c.acks = append(c.acks, pendingAck{ticket: t0, t: packet.PUBACK, pid: 4})
		err := c.limitPendingAcks()
		if v == packet.V5 {
			var code packet.ReasonCode
			if !errors.As(err, &code) || code != packet.ReceiveMaximumExceeded {
				t.Fatalf("[MQTT-3.3.4-7] v5 with 4 held acknowledgements: %v, want 0x93", err)
			}
			continue
		}
		if err != nil || len(c.acks) != 0 {
			t.Fatalf("3.1.1 over the limit: err %v, %d acknowledgements still held; want them sent", err, len(c.acks))
		}
	}
}
