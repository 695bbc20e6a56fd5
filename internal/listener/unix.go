package listener

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// DefaultUnixMode is the permission given to a unix socket when Unix is
// called with mode 0: owner and group may connect.
const DefaultUnixMode os.FileMode = 0o660

// Unix listens on a unix stream socket at path (config key "unix_path").
//
// A socket file left behind by a process that died is removed first; Unix
// finds it stale when connecting to it is refused. A live socket, or a path
// that is not a socket, is an error and is left alone. The socket's
// permission bits are set to mode (DefaultUnixMode when 0). Close removes the
// socket file. A path starting with '@' is a Linux abstract socket: there is
// no file to clean up or chmod.
//
// Between bind and chmod the socket briefly has the permissions allowed by the
// process umask; run with a umask that denies others write (such as 022 or
// 027), or put the socket in a directory that only the intended users can
// enter.
func Unix(path string, mode os.FileMode) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("listener: unix_path is empty")
	}
	if mode == 0 {
		mode = DefaultUnixMode
	}
	if mode&^os.ModePerm != 0 {
		return nil, fmt.Errorf("listener: unix_path %s: mode %v has bits other than permissions", path, mode)
	}
	abstract := strings.HasPrefix(path, "@")
	if !abstract {
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listener: unix_path %s: %w", path, err)
	}
	if !abstract {
		if err := os.Chmod(path, mode); err != nil {
			ln.Close() // unlinks the socket file
			return nil, fmt.Errorf("listener: unix_path %s: %w", path, err)
		}
	}
	// *net.UnixListener created by net.Listen unlinks its file on Close.
	return ln, nil
}

// removeStaleSocket removes the socket file at path if nothing listens on it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listener: unix_path %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("listener: unix_path %s: exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("listener: unix_path %s: in use by a running process", path)
	case errors.Is(err, syscall.ENOENT):
		return nil // removed meanwhile
	case !errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("listener: unix_path %s: checking for a stale socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("listener: unix_path %s: removing stale socket: %w", path, err)
	}
	return nil
}
