package daemon

import (
	"errors"
	"fmt"

	"mailroom/internal/config"
)

// reload is SIGHUP: the configuration file, its tables and the
// certificate are read again and swapped in whole, or refused whole.
func (d *daemon) reload() {
	d.notify("RELOADING=1")
	defer d.notify("READY=1")
	file := d.opts.ConfigPath
	if file == "" {
		file = "(as started)"
	}
	restart, err := d.reloadConfig()
	if err != nil {
		d.log.Error("reload", "what", "config", "file", file, "err", err, "action", "keeping the old configuration")
		return
	}
	for _, key := range restart {
		d.log.Warn("reload", "what", "config", "key", key, "reason", "needs a restart")
	}
	d.log.Info("reload", "what", "config", "file", file)
}

// reloadConfig reads, checks and applies the configuration; it returns
// the keys that changed but need a restart (kept at their old values).
func (d *daemon) reloadConfig() ([]string, error) {
	cur := d.cfg.Load()
	next, err := ReadConfig(d.opts.ConfigPath, cur)
	if err != nil {
		return nil, err
	}
	if err := applyListen(d.spec, next, d.opts.Listen); err != nil {
		return nil, err
	}
	restart := KeepFixed(cur, next, d.fixed)
	store, err := loadTLS(next)
	if err != nil {
		return nil, err
	}
	if store == nil && d.implicitTLS {
		return nil, errors.New("an implicit-TLS listener is open: tls_cert and tls_key cannot be removed without a restart")
	}
	if err := d.srv.Reload(next, store); err != nil {
		return nil, err
	}
	d.cfg.Store(next)
	return restart, nil
}

// ReadConfig loads and checks the configuration file at path for a
// reload; with path "" it returns a copy of cur (the tables and the
// certificate it names are then read again by the caller).
func ReadConfig(path string, cur *config.Config) (*config.Config, error) {
	if path == "" {
		next := *cur
		return &next, nil
	}
	next, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := next.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return next, nil
}
