package broker

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection; the test closes them.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestInReaderReleasesWhenDrained proves the idle-memory property of the socket path: once every
// buffered byte is consumed, more reports nothing to read and the buffer has gone back to the
// pool, and the next wait borrows one again for the bytes that arrive.
func TestInReaderReleasesWhenDrained(t *testing.T) {
	if !rawReads {
		t.Skip("sockets are read through net.Conn here")
	}
	srv, cl := tcpPair(t)
	var in inReader
	in.init(srv)
	if !in.canWait() {
		t.Fatal("a TCP connection should be read with raw reads")
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for round := range 3 {
		if _, err := cl.Write([]byte{0xC0, 0x00, byte(round)}); err != nil {
			t.Fatal(err)
		}
		if err := in.wait(); err != nil {
			t.Fatalf("round %d: wait: %v", round, err)
		}
		b, err := in.Peek(3) // may take a second read if the bytes came apart
		if err != nil {
			t.Fatalf("round %d: peek: %v", round, err)
		}
		if b[0] != 0xC0 || b[2] != byte(round) {
			t.Fatalf("round %d: read % x", round, b)
		}
		in.Discard(3)
		more, err := in.more()
		if err != nil || more {
			t.Fatalf("round %d: more = %v, %v; want false, nil", round, more, err)
		}
		if in.buf != nil {
			t.Fatalf("round %d: a drained reader still holds its buffer", round)
		}
	}
}

// TestInReaderPartialPacket reads a packet whose bytes arrive in two writes: Peek waits for the
// rest, holding what came first.
func TestInReaderPartialPacket(t *testing.T) {
	srv, cl := tcpPair(t)
	var in inReader
	in.init(srv)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	want := []byte("0123456789")
	cl.Write(want[:4])
	if err := in.wait(); err != nil { // the first part is buffered alone
		t.Fatal(err)
	}
	cl.Write(want[4:])
	b, err := in.Peek(len(want))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(want) {
		t.Fatalf("peek = %q, want %q", b, want)
	}
	if _, err := in.Peek(readBufferSize + 1); !errors.Is(err, errBufferFull) {
		t.Fatalf("peek past the buffer: %v, want errBufferFull", err)
	}
}

// TestInReaderLargeRead reads a body larger than the buffer: what is buffered comes first, the
// rest straight from the socket.
func TestInReaderLargeRead(t *testing.T) {
	srv, cl := tcpPair(t)
	var in inReader
	in.init(srv)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	want := make([]byte, 3*readBufferSize+17)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go cl.Write(want)
	got, err := readGrowing(&in, nil, len(want))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("the large body came back altered")
	}
}

// TestInReaderErrors: a closed peer reads as io.EOF, a passed deadline as a timeout, on both the
// socket path and the net.Conn path (net.Pipe).
func TestInReaderErrors(t *testing.T) {
	t.Run("tcp eof", func(t *testing.T) {
		srv, cl := tcpPair(t)
		var in inReader
		in.init(srv)
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		cl.Close()
		if err := in.wait(); !errors.Is(err, io.EOF) {
			t.Fatalf("wait after the peer closed: %v, want io.EOF", err)
		}
	})
	t.Run("tcp deadline", func(t *testing.T) {
		srv, _ := tcpPair(t)
		var in inReader
		in.init(srv)
		srv.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if err := in.wait(); !isTimeout(err) {
			t.Fatalf("wait past the deadline: %v, want a timeout", err)
		}
	})
	t.Run("pipe", func(t *testing.T) {
		srv, cl := net.Pipe()
		defer srv.Close()
		var in inReader
		in.init(srv)
		if in.canWait() {
			t.Fatal("net.Pipe has no poller wait")
		}
		go func() {
			cl.Write([]byte{1, 2, 3})
			cl.Close()
		}()
		b, err := in.Peek(3)
		if err != nil || string(b) != "\x01\x02\x03" {
			t.Fatalf("peek = % x, %v", b, err)
		}
		in.Discard(3)
		if more, err := in.more(); !more || err != nil || in.buf != nil {
			t.Fatalf("more between packets = %v, %v, holding a buffer %v; want true, nil, false", more, err, in.buf != nil)
		}
		if _, err := in.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("read after the peer closed: %v, want io.EOF", err)
		}
		srv2, _ := net.Pipe()
		defer srv2.Close()
		var in2 inReader
		in2.init(srv2)
		srv2.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if err := in2.wait(); !isTimeout(err) {
			t.Fatalf("wait past the deadline: %v, want a timeout", err)
		}
	})
}
