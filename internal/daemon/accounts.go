package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"

	"mailroom/internal/account"
	"mailroom/internal/config"
	"mailroom/internal/tlsconf"
)

// AccountServer is a server whose sessions log in against the passwd
// file: pop3d's and imapd's.
type AccountServer interface {
	// ServeConn serves one connection, TLS from the first byte when
	// implicitTLS, and closes it.
	ServeConn(c net.Conn, implicitTLS bool)
	// UseAccounts makes cfg's settings, the account table db and
	// tlsConfig (nil: no TLS) those of the sessions that start from now
	// on; sessions in flight keep theirs.
	UseAccounts(cfg *config.Config, db *account.DB, tlsConfig func() *tls.Config)
	// Shutdown lets sessions in flight finish until ctx ends; closed is
	// what it returns when the server was already shut.
	Shutdown(ctx context.Context) error
}

// NewAccountServer builds a program's AccountServer from the
// configuration, the account table and the TLS configuration.
type NewAccountServer func(cfg *config.Config, db *account.DB, tlsConfig func() *tls.Config, log *slog.Logger) AccountServer

// AccountStart is the Spec.Start of a program whose server is an
// AccountServer: it reads the passwd file (before privileges drop: the
// file may be readable by root alone) and builds the server. Connections
// of the service named implicitTLS are TLS from the first byte. SIGHUP
// reads the passwd file the new configuration names; closed is the
// server's error for a Shutdown of a server already shut, which is not a
// failure.
func AccountStart(implicitTLS string, closed error, newServer NewAccountServer) func(*config.Config, *tlsconf.Store, *slog.Logger) (Server, error) {
	return func(cfg *config.Config, store *tlsconf.Store, log *slog.Logger) (Server, error) {
		db, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
		if err != nil {
			return nil, err
		}
		srv := newServer(cfg, db, tlsOf(store), log)
		return &accountProgram{srv: srv, implicitTLS: implicitTLS, closed: closed, log: log}, nil
	}
}

// accountProgram drives an AccountServer as a Server.
type accountProgram struct {
	srv         AccountServer
	implicitTLS string
	closed      error
	log         *slog.Logger
}

func (p *accountProgram) ServeConn(c net.Conn, service string) {
	p.srv.ServeConn(c, service == p.implicitTLS)
}

// Reload reads the passwd file cfg names; new sessions get it, cfg's
// settings and store's certificate.
func (p *accountProgram) Reload(cfg *config.Config, store *tlsconf.Store) error {
	db, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if err != nil {
		p.log.Error("reload", "what", "tables", "file", cfg.PasswdFile, "err", err)
		return err
	}
	p.srv.UseAccounts(cfg, db, tlsOf(store))
	p.log.Info("reload", "what", "tables", "file", cfg.PasswdFile, "users", len(db.Users()))
	return nil
}

func (p *accountProgram) Shutdown(ctx context.Context) error {
	if err := p.srv.Shutdown(ctx); err != nil && !errors.Is(err, p.closed) {
		return err
	}
	return nil
}

// tlsOf is the TLS configuration of store, nil without one.
func tlsOf(store *tlsconf.Store) func() *tls.Config {
	if store == nil {
		return nil
	}
	return store.Config
}
