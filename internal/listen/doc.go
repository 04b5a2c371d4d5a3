// Package listen gives every mailroom daemon its sockets, however it was
// started: by systemd socket activation, by inetd (or ucspi-tcp's tcpserver),
// or standalone with addresses from the configuration.
//
// Open chooses the mode, in this order:
//
//   - systemd socket activation, per sd_listen_fds(3): when $LISTEN_PID equals
//     the process id and $LISTEN_FDS is a positive count, the descriptors
//     3 … 3+LISTEN_FDS−1 were passed in. $LISTEN_FDNAMES, a colon-separated list
//     with one name per descriptor, carries each socket unit's
//     FileDescriptorName=. The descriptors get FD_CLOEXEC at once, and
//     LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed from the
//     environment whatever their value, so that programs the daemon runs do not
//     take the sockets for their own.
//
//     Accept=no (mode Systemd): every descriptor is a listening socket. Its name
//     picks the Want it serves; a name no Want has is an error that names it,
//     and a Want no descriptor names is not served. Names that are missing,
//     empty or "unknown" are accepted only when there is exactly one Want.
//
//     Accept=yes (mode SystemdAccept): a single descriptor that is a connected
//     socket (getsockopt SO_ACCEPTCONN is 0); its name is usually "connection".
//     The service is Options.Service, else the Want the name matches, else the
//     only Want; with several Wants and no Service it is an error.
//
//   - inetd (mode Inetd, when Options.Inetd is set): the connection is on
//     descriptors 0 and 1. A socket there becomes a net.Conn of its own (the
//     peer's address comes from getpeername); anything else (the pipes of a
//     test, a terminal) is served through Stdio, whose addresses come from
//     ucspi-tcp's $TCPREMOTEIP/$TCPREMOTEPORT and $TCPLOCALIP/$TCPLOCALPORT.
//     Either way descriptors 0 and 1 are then pointed at /dev/null, so that
//     closing the connection really ends it for the peer and a stray write to
//     standard output cannot reach the client.
//
//   - standalone (mode Standalone): every address of every Want is bound with
//     net.Listen("tcp", addr). If one fails, those already bound are closed and
//     the error names the service and the address. (Want.Addrs matter only
//     here: under systemd the socket units say where to listen.)
//
// A single connection (SystemdAccept, Inetd) is served by the daemon's usual
// accept loop through Single, which returns it once and then net.ErrClosed
// after it has been closed.
//
// Limit bounds the connections a listener hands out, in total and per client
// IP address. A connection it hands out counts until its first Close (later
// Closes do not count again); one over the limits is never returned by Accept:
// it is given, in a goroutine of its own and under a write deadline of
// RejectTimeout, to the caller's reject function (which writes the protocol's
// refusal) and then closed.
//
// Notify speaks sd_notify(3): one datagram per state to the AF_UNIX socket
// named by $NOTIFY_SOCKET (a path, or an abstract name written with a
// leading '@').
package listen
