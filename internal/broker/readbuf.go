package broker

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// readBufferSize is the size of the read buffers, borrowed from readBufs only while bytes are
// arriving: an idle connection holds none, and a busy one reads up to 8 KiB per system call
// (about a hundred 64-byte messages).
const readBufferSize = 8 << 10

type readBuf [readBufferSize]byte

// readBufs holds the read buffers of connections that have nothing buffered. sync.Pool keeps
// what the last two garbage collections found unused, so it holds about as many buffers as
// connections were reading at once, and frees them when traffic stops.
var readBufs = sync.Pool{New: func() any { readBufsMade.Add(1); return new(readBuf) }}

// readBufsMade counts the read buffers ever allocated (tests: a connection that ends gives its
// buffer back, so a stream of connections reuses a few).
var readBufsMade atomic.Uint64

// errBufferFull reports a Peek larger than the read buffer (a caller's mistake).
var errBufferFull = errors.New("broker: peek larger than the read buffer")

// inReader is a connection's buffered reader, owned by its read loop. Its buffer is borrowed
// from readBufs while bytes are arriving and given back when every buffered byte has been
// consumed, before the read loop waits for more: an idle connection holds no read buffer
// (issue 12). A connection that has received part of a packet keeps its buffer until the rest
// has come and been consumed: a client that stops in the middle of a packet holds readBufferSize
// until its keep-alive deadline, if it has one (connectTimeout before CONNECT), ends it.
//
// On sockets (syscall.Conn: TCP and unix) the wait is the runtime's poller and the read into a
// borrowed buffer is the same single system call net.Conn.Read makes (rawFill). On anything else
// (TLS, WebSocket, net.Pipe) an idle connection waits in a one-byte Read and borrows the buffer
// once that byte has come; TLS and WebSocket buffer the rest of their record, so no system call
// is added.
type inReader struct {
	conn   net.Conn
	raw    syscall.RawConn       // nil when conn is not a socket
	fillFn func(fd uintptr) bool // b.rawFill, bound once so a read does not allocate
	buf    *readBuf              // nil when nothing is buffered
	r, w   int32                 // buf[r:w] is buffered
	// The outcome of the last rawFill that read nothing (fill turns it into an error; kept
	// small: an idle connection's whole client struct fits in 768 bytes, as
	// TestConnectionStructsFitTheirSizeClass checks).
	errno  uint32
	eof    bool
	noWait bool    // rawFill reports nothing to read instead of waiting (more)
	one    [1]byte // the first byte after an idle wait, without a socket
}

func (b *inReader) init(conn net.Conn) {
	b.conn = conn
	if !rawReads {
		return
	}
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			b.raw = rc
			b.fillFn = b.rawFill
		}
	}
}

// Buffered returns how many bytes are buffered.
func (b *inReader) Buffered() int { return int(b.w - b.r) }

// canWait reports whether the reader can wait for bytes without a read in progress: on a
// socket, in the poller.
func (b *inReader) canWait() bool { return b.raw != nil }

// more reports whether there are bytes to read: buffered ones, or, on a socket, bytes that have
// arrived (read at once, without waiting). Elsewhere it always reports true, the next read
// waits, and a buffer with nothing left in it goes back first: it is called between packets.
func (b *inReader) more() (bool, error) {
	if b.r < b.w {
		return true, nil
	}
	if b.raw == nil {
		b.release()
		return true, nil
	}
	b.r, b.w = 0, 0
	b.noWait = true
	err := b.fill()
	b.noWait = false
	if err == nil && b.w == 0 {
		return false, nil // nothing there; the buffer went back in rawFill
	}
	return err == nil, err
}

// release gives the buffer back; nothing may be buffered.
func (b *inReader) release() {
	if b.buf != nil {
		readBufs.Put(b.buf)
		b.buf = nil
	}
	b.r, b.w = 0, 0
}

// wait blocks until at least one byte is buffered. It is where an idle read loop parks: on a
// socket, in the poller with no buffer and few stack frames above it.
func (b *inReader) wait() error {
	if b.r < b.w {
		return nil
	}
	return b.fill()
}

// fill reads at least one more byte into the buffer; buffered bytes are moved to its front to
// make room. A buffer with nothing left in it is given back before waiting: on a socket by
// rawFill, elsewhere by more, between packets, so that the next packet's first byte is awaited
// without a buffer and the rest of it read in one Read.
func (b *inReader) fill() error {
	if b.r == b.w {
		b.r, b.w = 0, 0
	} else if b.r > 0 {
		b.w = int32(copy(b.buf[:], b.buf[b.r:b.w]))
		b.r = 0
	}
	if b.raw != nil {
		b.errno, b.eof = 0, false
		if err := b.raw.Read(b.fillFn); err != nil {
			return err // a deadline, or the connection closed
		}
		switch {
		case b.eof:
			return io.EOF
		case b.errno != 0:
			return &net.OpError{Op: "read", Net: b.conn.LocalAddr().Network(), Source: b.conn.LocalAddr(),
				Addr: b.conn.RemoteAddr(), Err: os.NewSyscallError("read", syscall.Errno(b.errno))}
		}
		return nil
	}
	if b.buf == nil {
		// Idle, at a packet boundary (more gave the buffer back): wait for the first byte
		// without a buffer.
		if err := readSome(b.conn, b.one[:]); err != nil {
			return err
		}
		b.buf = readBufs.Get().(*readBuf)
		b.buf[0] = b.one[0]
		b.w = 1
		return nil
	}
	n, err := b.conn.Read(b.buf[b.w:])
	if n == 0 {
		if err == nil {
			err = readSome(b.conn, b.buf[b.w:b.w+1]) // a Read that returned nothing: retry
			n = 1
		}
		if err != nil {
			return err
		}
	}
	b.w += int32(n)
	return nil // an error with data comes back on the next read
}

// maxEmptyReads is how many Reads in a row may return neither bytes nor an error before
// readSome gives up (bufio.Reader allows as many).
const maxEmptyReads = 100

// readSome reads at least one byte into p (a non-empty slice); it returns an error only when
// no byte was read.
func readSome(r io.Reader, p []byte) error {
	for range maxEmptyReads {
		n, err := r.Read(p)
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// rawFill is the function the socket's RawConn.Read calls: one non-blocking read into the
// buffer (borrowed here if the connection was idle). When nothing is there yet it gives an
// empty buffer back and returns false, and the poller parks the read loop until the socket is
// readable or its read deadline passes.
func (b *inReader) rawFill(fd uintptr) bool {
	if b.buf == nil {
		b.buf = readBufs.Get().(*readBuf)
	}
	n, errno := rawRead(fd, b.buf[b.w:])
	switch {
	case errno == errAgain:
		if b.w == 0 {
			b.release()
		}
		return b.noWait
	case errno != 0:
		b.errno = uint32(errno)
	case n == 0:
		b.eof = true
	default:
		b.w += int32(n)
	}
	return true
}

// ReadByte reads one byte (for packet.ReadFixedHeader).
func (b *inReader) ReadByte() (byte, error) {
	for b.r == b.w {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	c := b.buf[b.r]
	b.r++
	return c, nil
}

// Read reads into p. With nothing buffered and p at least as large as the buffer, it reads
// straight into p, holding no buffer.
func (b *inReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= readBufferSize {
			b.release()
			return b.conn.Read(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += int32(n)
	return n, nil
}

// Peek returns the next n bytes without consuming them, reading until they are buffered; n is
// at most readBufferSize. The slice is valid until the next read.
func (b *inReader) Peek(n int) ([]byte, error) {
	if n > readBufferSize {
		return nil, errBufferFull
	}
	for int(b.w-b.r) < n {
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return nil, nil
	}
	return b.buf[b.r : int(b.r)+n], nil
}

// Discard consumes n buffered bytes (after Peek).
func (b *inReader) Discard(n int) { b.r += int32(n) }
