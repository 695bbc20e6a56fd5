//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/turnstilemq/turnstile/internal/packet"
)

// rawConnect opens the conn scenario's connections with rawDial and hands them to Go's poller
// (adopt): the connections, nil where one failed, and when the last CONNACK came, before the
// hand-over. ok is false for TLS, which goes through crypto/tls and net.Dialer (dialAll).
func (d *dialer) rawConnect(ctx context.Context, n, concurrency int, done func(took time.Duration), failed func(i int, err error)) (conns []*conn, connected time.Time, ok bool) {
	if d.tls != nil {
		return nil, time.Time{}, false
	}
	fds := d.rawDial(ctx, n, concurrency, done, failed)
	connected = time.Now()
	return d.adopt(fds, failed), connected, true
}

// rawDial opens n connections, concurrency at a time, and completes CONNECT/CONNACK on each, as
// connect does, but on non-blocking sockets driven by epoll loops of its own (one per CPU)
// instead of a goroutine and the Go poller per connection.
//
// Why: the conn scenario measures how fast a broker accepts logins, on the machine the load
// generator shares. Through net.Dialer a connection costs the generator socket, connect,
// getsockopt, setsockopt, getsockname, getpeername, two epoll_ctl and a read that finds nothing
// yet, plus a goroutine's park and wake-up: 63 µs of CPU per login on the two cores of
// docs/benchmarks.md, more than Turnstile's own connect phase, and taken from the broker being
// measured. Here a connection costs socket, connect, epoll_ctl, write and read, and one
// epoll_wait serves many: 44 µs. The broker sees the same bytes.
//
// done(took) is called for each connection that got a CONNACK accepting it, failed(i, err) for
// each that did not, from the loops' goroutines. It returns the sockets, -1 for those that
// failed; adopt hands them to Go's poller for the rest of the scenario, outside the timing.
func (d *dialer) rawDial(ctx context.Context, n, concurrency int, done func(took time.Duration), failed func(i int, err error)) []int {
	fds := make([]int, n)
	for i := range fds {
		fds[i] = -1
	}
	ta, err := net.ResolveTCPAddr("tcp", d.addr)
	if err != nil {
		for i := range n {
			failed(i, err)
		}
		return fds
	}
	loops := max(1, min(runtime.GOMAXPROCS(0), concurrency))
	var (
		next int
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	take := func() int {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || ctx.Err() != nil {
			return -1
		}
		next++
		return next - 1
	}
	for l := range loops {
		per := concurrency / loops
		if l < concurrency%loops {
			per++
		}
		wg.Go(func() {
			// A Sockaddr of each loop's own: syscall.Connect writes into it.
			sa, family := sockaddr(ta)
			lp := rawLoop{d: d, sa: sa, family: family, take: take, fds: fds, done: done, failed: failed}
			lp.run(ctx, per)
		})
	}
	wg.Wait()
	return fds
}

// adopt wraps the sockets rawDial opened as conns (net.FileConn: a dup registered with Go's
// poller; the original is closed). failed is called for any that cannot be.
func (d *dialer) adopt(fds []int, failed func(i int, err error)) []*conn {
	conns := make([]*conn, len(fds))
	for i, fd := range fds {
		if fd < 0 {
			continue
		}
		f := os.NewFile(uintptr(fd), "")
		nc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			failed(i, fmt.Errorf("handing the socket to the Go poller: %w", err))
			continue
		}
		conns[i] = d.newConn(nc, d.clientID("c", i), idleReadBuffer)
	}
	return conns
}

func sockaddr(ta *net.TCPAddr) (syscall.Sockaddr, int) {
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: ta.Port}
		copy(sa.Addr[:], ip4)
		return sa, syscall.AF_INET
	}
	sa := &syscall.SockaddrInet6{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To16())
	if ifi, err := net.InterfaceByName(ta.Zone); err == nil {
		sa.ZoneId = uint32(ifi.Index) // fe80::1%eth0
	}
	return sa, syscall.AF_INET6
}

// rawSlot is one connection in flight in a rawLoop.
type rawSlot struct {
	fd      int // -1 when free
	i       int
	t0      time.Time
	connect []byte // CONNECT, until written
	in      []byte // CONNACK bytes read so far
}

type rawLoop struct {
	d      *dialer
	sa     syscall.Sockaddr
	family int
	take   func() int
	fds    []int
	done   func(took time.Duration)
	failed func(i int, err error)

	ep    int
	slots []rawSlot
	open  int
	buf   [512]byte
}

func (lp *rawLoop) run(ctx context.Context, per int) {
	var err error
	if lp.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		for i := lp.take(); i >= 0; i = lp.take() {
			lp.failed(i, fmt.Errorf("epoll: %w", err))
		}
		return
	}
	defer syscall.Close(lp.ep)
	lp.slots = make([]rawSlot, per)
	for s := range lp.slots {
		lp.slots[s].fd = -1
	}
	events := make([]syscall.EpollEvent, per)
	for {
		for s := range lp.slots {
			lp.start(s) // refills the slots that finished
		}
		if lp.open == 0 {
			return
		}
		k, err := syscall.EpollWait(lp.ep, events, 100)
		if err != nil && err != syscall.EINTR {
			for s := range lp.slots {
				if lp.slots[s].fd >= 0 {
					lp.fail(s, fmt.Errorf("epoll_wait: %w", err))
				}
			}
			return
		}
		for _, ev := range events[:max(k, 0)] {
			s := int(ev.Pad)
			if lp.slots[s].fd != int(ev.Fd) {
				continue // an event for a connection this slot has finished with
			}
			lp.ready(s, ev.Events)
			lp.start(s) // at once if that finished it: the broker gets the next login sooner
		}
		now := time.Now()
		for s := range lp.slots {
			sl := &lp.slots[s]
			if sl.fd < 0 {
				continue
			}
			if ctx.Err() != nil {
				lp.fail(s, ctx.Err())
			} else if now.Sub(sl.t0) > handshakeTimeout {
				lp.fail(s, errors.New("waiting for CONNACK: i/o timeout"))
			}
		}
	}
}

// start opens the next connection in slot s, if s is free and any is left: it tries until one
// is open or none is left. A connection that fails at once frees the slot again.
func (lp *rawLoop) start(s int) {
	for lp.slots[s].fd < 0 {
		i := lp.take()
		if i < 0 {
			return
		}
		sl := &lp.slots[s]
		*sl = rawSlot{fd: -1, i: i, t0: time.Now(), in: sl.in[:0]}
		fd, err := syscall.Socket(lp.family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
		if err != nil {
			lp.failed(i, fmt.Errorf("socket: %w", err))
			continue
		}
		if err := syscall.Connect(fd, lp.sa); err != nil && err != syscall.EINPROGRESS {
			syscall.Close(fd)
			lp.failed(i, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)})
			continue
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | -syscall.EPOLLET, Fd: int32(fd), Pad: int32(s)}
		if err := syscall.EpollCtl(lp.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			syscall.Close(fd)
			lp.failed(i, fmt.Errorf("epoll_ctl: %w", err))
			continue
		}
		sl.fd = fd
		sl.connect = lp.d.connectPacket(i, lp.d.clientID("c", i), false)
		lp.open++
		// On loopback the handshake is over when connect returns; elsewhere the write finds
		// EAGAIN and EPOLLOUT says when to try again.
		lp.ready(s, syscall.EPOLLOUT)
	}
}

// ready moves slot s's connection on after the epoll events given: it writes the rest of CONNECT
// once the socket is writable, then reads until a whole CONNACK is there or the socket has no
// more to read.
func (lp *rawLoop) ready(s int, events uint32) {
	sl := &lp.slots[s]
	if len(sl.connect) > 0 && events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
		w, err := syscall.Write(sl.fd, sl.connect)
		switch {
		case err == syscall.EAGAIN:
			return
		case err != nil:
			if soerr, _ := syscall.GetsockoptInt(sl.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); soerr != 0 {
				err = syscall.Errno(soerr)
			}
			lp.fail(s, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)})
			return
		}
		sl.connect = sl.connect[w:]
		if len(sl.connect) > 0 {
			return
		}
	}
	if len(sl.connect) > 0 || events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLERR|syscall.EPOLLHUP) == 0 {
		return
	}
	for {
		r, err := syscall.Read(sl.fd, lp.buf[:])
		if err == syscall.EAGAIN {
			return
		}
		if err != nil {
			lp.fail(s, fmt.Errorf("waiting for CONNACK: %w", err))
			return
		}
		if r == 0 {
			lp.fail(s, fmt.Errorf("waiting for CONNACK: %w", io.ErrUnexpectedEOF))
			return
		}
		sl.in = append(sl.in, lp.buf[:r]...)
		h, hs, err := packet.DecodeFixedHeader(sl.in)
		if err == packet.ErrIncomplete || err == nil && len(sl.in) < hs+h.Remaining {
			continue
		}
		if err != nil {
			lp.fail(s, fmt.Errorf("waiting for CONNACK: %w", err))
			return
		}
		if _, err := lp.d.checkConnack(h, sl.in[hs:hs+h.Remaining]); err != nil {
			lp.fail(s, err)
			return
		}
		if len(sl.in) > hs+h.Remaining {
			// Nothing may follow CONNACK before the client speaks again; the bytes would be
			// lost when the socket is handed to Go's poller.
			lp.fail(s, errors.New("the broker sent more after CONNACK than the bench asked for"))
			return
		}
		lp.done(time.Since(sl.t0))
		lp.fds[sl.i] = sl.fd
		lp.finish(s)
		return
	}
}

// fail closes slot s's socket and reports err for its connection.
func (lp *rawLoop) fail(s int, err error) {
	sl := &lp.slots[s]
	syscall.Close(sl.fd)
	lp.failed(sl.i, err)
	lp.finish(s)
}

// finish frees slot s (its socket is kept, in fds, or closed); the run loop refills it.
func (lp *rawLoop) finish(s int) {
	lp.slots[s].fd = -1
	lp.open--
}
