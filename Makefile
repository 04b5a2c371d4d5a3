# mailroom: build, test, run and install.
#
#   make run      build, then run everything on 127.0.0.1 with state in ./run/
#   make test     every test, interop and end-to-end included (what CI runs)
#   make lint     gofmt, go vet, mandoc -Tlint
#   make install  PREFIX=/usr/local DESTDIR= (see the variables below)
#
# GOFLAGS (e.g. -trimpath) is honoured by every go command through the
# environment.

GO ?= go

PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
# The programs read /etc/mailroom/mailroom.conf unless told otherwise, so the
# sample goes to /etc even when PREFIX is /usr/local.
SYSCONFDIR ?= /etc
UNITDIR    ?= /lib/systemd/system
DESTDIR    ?=
TMPFILESDIR ?= /usr/lib/tmpfiles.d
DOCDIR     ?= $(PREFIX)/share/doc/mailroom

# Every directory under cmd/ is a program; all of them are system
# administration commands or daemons, so all go to sbin (DESIGN.md §2).
PROGRAMS := $(notdir $(wildcard cmd/*))
MAN5     := $(wildcard man/*.5)
MAN8     := $(wildcard man/*.8)
MAN1     := $(wildcard man/*.1)
UNITS    := $(wildcard etc/systemd/*.service etc/systemd/*.socket)

.PHONY: all build test lint run bench install clean

all: build

# Static binaries (no cgo): nothing in mailroom needs libc, and an MDA that
# runs once per message starts faster without the dynamic loader
# (docs/benchmarks.md). Tests keep cgo: the race detector needs it.
build:
	CGO_ENABLED=0 $(GO) build -o bin/ ./cmd/...

# MAILROOM_REQUIRE_INTEROP=1 turns "tool missing, skipped" into a failure:
# the interop tests against Dovecot and Postfix must really run.
test: lint
	MAILROOM_REQUIRE_INTEROP=1 $(GO) test -race -timeout 20m ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then \
		echo "gofmt -l: these files need gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(if $(MAN1)$(MAN5)$(MAN8),mandoc -Tlint -Wwarning $(MAN1) $(MAN5) $(MAN8))
	scripts/lint-units.sh

run:
	scripts/run.sh

bench:
	scripts/bench.sh $(BENCH)

# An existing mailroom.conf is the admin's: install never overwrites it.
install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(addprefix bin/,$(PROGRAMS)) $(DESTDIR)$(SBINDIR)/
	@# sendmail is also mailq and newaliases, chosen by argv[0] (sendmail(8)).
	$(if $(filter sendmail,$(PROGRAMS)),ln -sf sendmail $(DESTDIR)$(SBINDIR)/mailq)
	$(if $(filter sendmail,$(PROGRAMS)),ln -sf sendmail $(DESTDIR)$(SBINDIR)/newaliases)
	$(if $(MAN1),install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN5),install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/)
	$(if $(MAN8),install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/)
	$(if $(UNITS),install -d $(DESTDIR)$(UNITDIR))
	$(if $(UNITS),install -m 0644 $(UNITS) $(DESTDIR)$(UNITDIR)/)
	install -d $(DESTDIR)$(TMPFILESDIR)
	install -m 0644 etc/tmpfiles.d/mailroom.conf $(DESTDIR)$(TMPFILESDIR)/mailroom.conf
	@# Examples the admin copies by hand: fail2ban, inetd, per-connection units.
	install -d $(DESTDIR)$(DOCDIR)/examples/fail2ban/filter.d $(DESTDIR)$(DOCDIR)/examples/fail2ban/jail.d \
		$(DESTDIR)$(DOCDIR)/examples/xinetd.d $(DESTDIR)$(DOCDIR)/examples/systemd-per-connection
	install -m 0644 etc/fail2ban/filter.d/mailroom.conf $(DESTDIR)$(DOCDIR)/examples/fail2ban/filter.d/
	install -m 0644 etc/fail2ban/jail.d/mailroom.conf $(DESTDIR)$(DOCDIR)/examples/fail2ban/jail.d/
	install -m 0644 etc/inetd.conf $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 etc/xinetd.d/* $(DESTDIR)$(DOCDIR)/examples/xinetd.d/
	install -m 0644 etc/systemd/per-connection/* $(DESTDIR)$(DOCDIR)/examples/systemd-per-connection/
	@# The units name /usr/sbin; point them at where the programs went.
	$(if $(UNITS),sed -i 's#/usr/sbin/#$(SBINDIR)/#' $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS))))
	@if [ -f etc/mailroom.conf ] && [ ! -e $(DESTDIR)$(SYSCONFDIR)/mailroom/mailroom.conf ]; then \
		echo install -m 0644 etc/mailroom.conf $(DESTDIR)$(SYSCONFDIR)/mailroom/mailroom.conf; \
		install -d $(DESTDIR)$(SYSCONFDIR)/mailroom && \
		install -m 0644 etc/mailroom.conf $(DESTDIR)$(SYSCONFDIR)/mailroom/mailroom.conf; \
	fi

# ./run/ (make run's state: accounts, Maildirs, certificate) is kept on
# purpose; remove it by hand to start the playground afresh.
clean:
	rm -rf bin/
