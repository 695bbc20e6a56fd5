package listener

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// echoOnce accepts one connection and echoes until EOF; the returned channel
// yields the accepted conn's RemoteAddr.
func echoOnce(t *testing.T, ln net.Listener) <-chan net.Addr {
	t.Helper()
	addrs := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(addrs)
			return
		}
		defer c.Close()
		addrs <- c.RemoteAddr()
		io.Copy(c, c)
	}()
	return addrs
}

func roundTrip(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func TestTCPEcho(t *testing.T) {
	ln, err := TCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addrs := echoOnce(t, ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("\x10\x0chello world!"))
	remote := <-addrs
	if remote.String() != c.LocalAddr().String() {
		t.Errorf("RemoteAddr = %v, want %v", remote, c.LocalAddr())
	}
	if !IsLoopback(remote) {
		t.Errorf("IsLoopback(%v) = false", remote)
	}
}

type fakeAddr struct{ network, s string }

func (a fakeAddr) Network() string { return a.network }
func (a fakeAddr) String() string  { return a.s }

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want bool
	}{
		{"nil", nil, false},
		{"unix named", &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, true},
		{"unix unnamed peer", &net.UnixAddr{Name: "@", Net: "unix"}, true},
		{"typed nil unix", (*net.UnixAddr)(nil), false},
		{"tcp 127.0.0.1", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, true},
		{"tcp 127.1.2.3", &net.TCPAddr{IP: net.IPv4(127, 1, 2, 3), Port: 1}, true},
		{"tcp ::1", &net.TCPAddr{IP: net.IPv6loopback, Port: 1}, true},
		{"tcp v4-mapped loopback", &net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 1}, true},
		{"tcp lan", &net.TCPAddr{IP: net.IPv4(192, 168, 1, 2), Port: 1}, false},
		{"tcp unspecified", &net.TCPAddr{IP: net.IPv4zero, Port: 1}, false},
		{"typed nil tcp", (*net.TCPAddr)(nil), false},
		{"other loopback string", fakeAddr{"websocket", "127.0.0.1:5"}, true},
		{"other v6 string", fakeAddr{"websocket", "[::1]:5"}, true},
		{"other public string", fakeAddr{"websocket", "203.0.113.9:5"}, false},
		{"other unix network", fakeAddr{"unix", ""}, true},
		{"garbage", fakeAddr{"x", "localhost:80"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsLoopback(tt.addr); got != tt.want {
				t.Errorf("IsLoopback(%v) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

// sockPath returns a short socket path in a test temp dir (sun_path is
// limited to 108 bytes).
func sockPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "t.sock")
	if len(p) >= 100 {
		dir, err := os.MkdirTemp("", "ts")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		p = filepath.Join(dir, "t.sock")
	}
	return p
}

func TestUnixEchoModeAndCleanup(t *testing.T) {
	for _, tc := range []struct {
		mode, want os.FileMode
	}{{0, 0o660}, {0o600, 0o600}} {
		path := sockPath(t)
		ln, err := Unix(path, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tc.want {
			t.Errorf("mode %v: socket file mode = %v, want socket %v", tc.mode, fi.Mode(), tc.want)
		}
		addrs := echoOnce(t, ln)
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, []byte("\xc0\x00"))
		if remote := <-addrs; !IsLoopback(remote) {
			t.Errorf("IsLoopback(%#v) = false for a unix peer", remote)
		}
		c.Close()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("socket file still there after Close: %v", err)
		}
	}
}

func TestUnixRemovesStaleSocket(t *testing.T) {
	path := sockPath(t)
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close() // leaves a dead socket file behind, as a crash would
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	ln, err := Unix(path, 0)
	if err != nil {
		t.Fatalf("Unix over a stale socket: %v", err)
	}
	defer ln.Close()
	echoOnce(t, ln)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, []byte("ok"))
}

func TestUnixRefusesLiveSocketAndOtherFiles(t *testing.T) {
	path := sockPath(t)
	live, err := Unix(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if ln, err := Unix(path, 0); err == nil {
		ln.Close()
		t.Fatal("Unix took over a socket in use")
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("live socket removed: %v", err)
	}

	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, file, []byte("data"))
	if ln, err := Unix(file, 0); err == nil {
		ln.Close()
		t.Fatal("Unix replaced a regular file")
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "data" {
		t.Fatalf("regular file disturbed: %q %v", b, err)
	}

	if _, err := Unix(path+"x", os.ModeSetuid|0o600); err == nil {
		t.Fatal("Unix accepted a mode with non-permission bits")
	}
	if _, err := Unix("", 0); err == nil {
		t.Fatal("Unix accepted an empty path")
	}
}
