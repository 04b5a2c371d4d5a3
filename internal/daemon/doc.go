// Package daemon is the scaffolding smtpd, pop3d and imapd share: the
// command line (--config, --check-config, --print-config, --listen,
// --inetd, --service), the sockets (internal/listen: systemd, inetd or
// standalone), the privilege drop, one connection limit over every
// listener, the signal loop and sd_notify(3).
//
// What a program brings is a Spec: its services, its connection limits,
// how it drops privileges, and a Start function that builds its Server.
// The contract with the Server:
//
//   - ServeConn serves one connection of a named service and closes it.
//   - Reload makes a new, checked configuration (and TLS store) the one
//     NEW sessions start with; sessions in flight keep the settings they
//     started with. An error refuses the whole reload: nothing changes.
//   - Shutdown (SIGTERM, SIGINT) runs after the listeners are closed: it
//     lets what is in flight finish and returns when every session is
//     over or its context ends (Spec.ShutdownTimeout), when it closes what
//     is left. Run then returns nil: a stop on request is a clean exit.
//
// SIGHUP reads mailroom.conf again (Options.ConfigPath). A file that does
// not load, does not pass config.Check, names a certificate that does not
// load, or whose tables the Server cannot load is refused: the error is
// logged ("msg=reload what=config ... err=") and the old configuration
// stays in force. A good one is swapped in whole. Keys read only at start
// (the listen addresses, connection limits, spool_dir, mail_root,
// log_format, log_level and [smtpd] user: see Fixed) keep their old
// values, and a warning names each one that changed
// ("msg=reload key=spool_dir reason=\"needs a restart\""). sd_notify
// gets RELOADING=1 before and READY=1 after, whatever the outcome.
package daemon
