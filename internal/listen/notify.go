package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// Notify sends an sd_notify(3) state ("READY=1", "RELOADING=1",
// "STOPPING=1", "STATUS=...") as one datagram to the AF_UNIX socket named by
// $NOTIFY_SOCKET: a path, or an abstract socket written with a leading '@'.
// Without $NOTIFY_SOCKET it does nothing and returns nil. The variable is
// left set: a daemon notifies several times over its life.
func Notify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if state == "" {
		return errors.New("sd_notify: empty state")
	}
	// Go maps a leading '@' to Linux's abstract namespace itself.
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "@") {
		return fmt.Errorf("sd_notify: unsupported NOTIFY_SOCKET %q", name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	_, werr := conn.Write([]byte(state))
	cerr := conn.Close()
	if werr != nil {
		return fmt.Errorf("sd_notify %q: %w", state, werr)
	}
	if cerr != nil {
		return fmt.Errorf("sd_notify: %w", cerr)
	}
	return nil
}
