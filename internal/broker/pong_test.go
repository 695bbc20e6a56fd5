//go:build unix

package broker

import (
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// A PINGREQ that finds the socket's send buffer full, from a client that stopped reading, is
// still answered: the read path's one write takes nothing, the PINGRESP waits in the out queue for
// a write loop, and reaches the client once it reads again, after what was already on its way
// [MQTT-3.12.4-1].
func TestPongWhenTheSocketIsFull(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
	// A descriptor of the server's end of our own, written to directly to fill its send buffer.
	filler, err := syscall.Dup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(filler)
	conn := func(fd int, name string) net.Conn {
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		c, err := net.FileConn(f) // a dup of fd
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	server, client := conn(fds[0], "server"), conn(fds[1], "client")
	defer client.Close()

	srv := newTestServer(t)
	done := make(chan struct{})
	go func() { srv.ServeConn(server, pipeListener); close(done) }()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := client.Write((&packet.Connect{Version: packet.V311, ClientID: "full", CleanStart: true, KeepAlive: 60}).Append(nil, packet.V311)); err != nil {
		t.Fatal(err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(client, ack[:]); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x, %v", ack, err)
	}

	if err := syscall.SetNonblock(filler, true); err != nil {
		t.Fatal(err)
	}
	junk := 0
	for chunk := make([]byte, 512); ; {
		n, err := syscall.Write(filler, chunk)
		if err == syscall.EAGAIN {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		junk += n
	}
	w0 := writeLoopsStarted.Load()
	if _, err := client.Write((&packet.Pingreq{}).Append(nil, packet.V311)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); writeLoopsStarted.Load() == w0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the PINGREQ's answer did not go to a write loop while the socket was full")
		}
	}
	if _, err := io.CopyN(io.Discard, client, int64(junk)); err != nil {
		t.Fatalf("reading the %d bytes that filled the socket: %v", junk, err)
	}
	var resp [2]byte
	if _, err := io.ReadFull(client, resp[:]); err != nil || resp != pingresp {
		t.Fatalf("after the socket drained: %x, %v; want PINGRESP %x", resp, err, pingresp)
	}
	client.Write((&packet.Disconnect{}).Append(nil, packet.V311))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection did not end after DISCONNECT")
	}
}
