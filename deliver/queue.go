package deliver

// The queue daemon (deliver --queue): the spool's one consumer. It picks
// up maildrop files, delivers queued messages to local mailboxes through
// the same write path as MDA mode, hands remote recipients to a
// RemoteTransport, records per-recipient states, retries with backoff,
// sends DSNs and removes finished messages. See deliver(8), QUEUE DAEMON.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"mailroom/internal/config"
	"mailroom/maildir"
	"mailroom/spool"
)

// QueueOptions are what the caller supplies besides the configuration.
type QueueOptions struct {
	Logger *slog.Logger // nil: discard
	// Remote sends mail for domains not hosted here; nil until issue 5
	// supplies one, and then such recipients are deferred with 4.4.1.
	Remote RemoteTransport
	// Ready is called once, when the daemon holds the lock, has rescanned
	// and watches the spool (cmd/deliver: sd_notify READY=1).
	Ready func()
	// ShutdownGrace bounds how long Run waits at shutdown for messages in
	// flight; 0 means 30 seconds. What is cut off is delivered again after
	// the restart (at least once).
	ShutdownGrace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// sweepInterval is how often tmp/, trash/ and stale drops are swept and
// the queue rescanned as a safety net beside inotify.
const sweepInterval = time.Hour

// sweepAge is the age after which a writer's leftovers are swept.
const sweepAge = 24 * time.Hour

// Queue is the queue daemon over one spool.
type Queue struct {
	// conf is the configuration in force: ReloadConfig (SIGHUP) swaps it;
	// a message in flight may see the new one from its next step on.
	conf   atomic.Pointer[config.Config]
	spool  *spool.Spool
	log    *slog.Logger
	remote RemoteTransport
	opts   QueueOptions
	now    func() time.Time
	d      *maildir.Deliverer
	tables atomic.Pointer[tables]
	uid    uint32

	sched scheduler

	// afterTask, when set (tests), is called after each task finishes.
	afterTask func(task)
}

// NewQueue loads the accounts and aliases and returns a daemon for the
// spool at cfg.SpoolDir, which must exist (spool.Setup).
func NewQueue(cfg *config.Config, opts QueueOptions) (*Queue, error) {
	sp, err := spool.Open(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	tabs, err := loadTables(cfg)
	if err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	q := &Queue{spool: sp, log: opts.Logger, remote: opts.Remote, opts: opts, now: opts.Now,
		uid: uint32(os.Getuid())}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.now == nil {
		q.now = time.Now
	}
	q.d = &maildir.Deliverer{Host: cfg.Hostname, Confine: cfg.MailRoot, Now: q.now}
	q.conf.Store(cfg)
	q.tables.Store(tabs)
	q.sched.init()
	return q, nil
}

// Reload reads the accounts and aliases again, with the configuration
// the queue was made with (see ReloadConfig).
func (q *Queue) Reload() error { return q.ReloadConfig(q.cfg()) }

// cfg is the configuration in force.
func (q *Queue) cfg() *config.Config { return q.conf.Load() }

// ReloadConfig reads the accounts and aliases cfg names again (SIGHUP) and
// swaps them in, with cfg's routing (domains, recipient_delimiter, alias
// targets allowed), quotas, size limit, backoffs and lifetimes, for the
// next step of every message. What the queue was built with stays: its
// workers (queue_concurrency), its Maildir writer (hostname) and its
// remote transport (cmd/deliver keeps those keys and names them as
// needing a restart). On error nothing changes.
func (q *Queue) ReloadConfig(cfg *config.Config) error {
	tabs, err := loadTables(cfg)
	if err != nil {
		q.log.Error("reload", "what", "tables", "err", err)
		return fmt.Errorf("reload: %w", err)
	}
	q.tables.Store(tabs)
	q.conf.Store(cfg)
	q.log.Info("reload", "what", "tables", "users", len(tabs.users.Users()))
	return nil
}

// ErrLocked is wrapped when another queue daemon holds the spool.
var ErrLocked = errors.New("deliver: another queue daemon is running on this spool")

// Run takes the consumer lock, sweeps, rescans, watches the spool and
// delivers until ctx is done; then it stops taking messages, lets those in
// flight finish (within ShutdownGrace), releases the lock and returns nil.
func (q *Queue) Run(ctx context.Context) error {
	release, err := q.spool.LockConsumer()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLocked, err)
	}
	defer release()
	w, polling, err := openWatcher(q.spool.Dir())
	if err != nil {
		return err
	}
	defer w.close()
	if polling {
		q.log.Warn("watch", "reason", "no inotify instance or watch left for this user; polling the spool",
			"interval", pollInterval, "hint", "raise fs.inotify.max_user_instances")
	}
	q.sweep()
	q.rescan()

	workCtx, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	n := max(int(q.cfg().Deliver.QueueConcurrency), 1)
	var workers sync.WaitGroup
	for range n {
		workers.Add(1)
		go func() {
			defer workers.Done()
			q.work(workCtx)
		}()
	}
	watchDone := make(chan error, 1)
	go func() { watchDone <- w.run(q.event) }()
	q.log.Info("start", "spool", q.spool.Dir(), "workers", n)
	if q.opts.Ready != nil {
		q.opts.Ready()
	}

	var watchErr error
	q.loop(ctx, watchDone, &watchErr)

	q.sched.stop()
	w.close()
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	grace := q.opts.ShutdownGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	select {
	case <-done:
	case <-time.After(grace):
		// Cut the remote transport short; local writes finish quickly.
		cancelWork()
		q.log.Warn("stop", "reason", "messages still in flight after the grace period")
	}
	q.log.Info("stop")
	return watchErr
}

// loop runs the timers (deferred retries, periodic sweep) until ctx is
// done or the watcher fails.
func (q *Queue) loop(ctx context.Context, watchDone <-chan error, watchErr *error) {
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		retry.Reset(q.sched.untilNext(q.now()))
		select {
		case <-ctx.Done():
			return
		case err := <-watchDone:
			if err != nil {
				q.log.Error("watch", "err", err)
				*watchErr = err
			}
			return
		case <-sweep.C:
			q.sweep()
			q.rescan()
		case <-retry.C:
			q.sched.releaseDue(q.now())
		case <-q.sched.changed:
		}
	}
}

// event handles what the watcher saw.
func (q *Queue) event(ev watchEvent) {
	switch ev.kind {
	case evOverflow:
		q.log.Warn("watch", "reason", "inotify queue overflow, rescanning")
		q.rescan()
	case evPoll:
		q.rescan()
	case evQueued:
		q.sched.add(task{id: ev.id})
	case evDropped:
		q.sched.add(task{id: ev.id, drop: true})
	}
}

// sweep removes writers' leftovers.
func (q *Queue) sweep() {
	n, err := q.spool.SweepTmp(sweepAge)
	if err != nil {
		q.log.Error("sweep", "err", err)
	}
	if n > 0 {
		q.log.Info("sweep", "removed", n)
	}
}

// rescan queues every message and drop not already known to be waiting.
func (q *Queue) rescan() {
	drops, err := q.spool.ListMaildrop()
	if err != nil {
		q.log.Error("rescan", "err", err)
	}
	for _, id := range drops {
		q.sched.add(task{id: id, drop: true})
	}
	ids, err := q.spool.List()
	if err != nil {
		q.log.Error("rescan", "err", err)
	}
	for _, id := range ids {
		q.sched.addUnlessWaiting(task{id: id})
	}
}

// work is one worker: it runs tasks until the scheduler stops.
func (q *Queue) work(ctx context.Context) {
	for {
		t, ok := q.sched.take()
		if !ok {
			return
		}
		var next time.Time
		if t.drop {
			next = q.pickup(t.id)
		} else {
			next = q.processMessage(ctx, t.id)
		}
		q.sched.done(t, next)
		if q.afterTask != nil {
			q.afterTask(t)
		}
	}
}

// pickup moves one maildrop file into the queue; the queue's inotify
// event then brings it to a worker.
func (q *Queue) pickup(id spool.ID) time.Time {
	_, err := q.spool.Pickup(id)
	var refused *spool.RefusedError
	switch {
	case err == nil:
		q.log.Info("pickup", "msgid", id)
	case errors.Is(err, spool.ErrNotReady):
		// The chmod that completes it brings another event.
	case errors.As(err, &refused):
		q.log.Warn("pickup", "msgid", id, "status", "refused", "reason", refused.Reason, "action", refused.Action)
	case errors.Is(err, os.ErrNotExist):
		// Picked up already (an event and a rescan raced).
	default:
		q.log.Error("pickup", "msgid", id, "err", err)
		return q.now().Add(q.cfg().Deliver.MinBackoff)
	}
	return time.Time{}
}
