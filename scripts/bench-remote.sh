#!/usr/bin/env bash
# make bench (part remote): how fast a queue of N messages for a remote
# domain is handed to its next hop, mailroom's `deliver --queue` against
# Postfix's qmgr + smtp(8), both to the same fast sink: Postfix's
# smtp-sink on 127.0.0.1, started with -M N so that it exits after the
# N-th message. The clock runs from the moment delivery is set going
# until the sink has exited (bench/mailbench remote).
#
# mailroom: N messages of ~5 KB submitted with bin/sendmail (as nobody,
# 8 at a time) while no daemon runs, then moved from the maildrop into the
# queue (`mailbench pickup`, as the spool's owner, what the daemon's pickup
# does), so they wait in queue/ as Postfix's wait in its deferred queue;
# that spool is kept as a template and copied for each run. The run starts
# `deliver --queue`, whose transport_file maps the domain to
# [127.0.0.1]:PORT: its time is the daemon's start and remote delivery.
# (PICKUP_IN_CLOCK=1 leaves the messages in the maildrop instead, so the
# daemon's pickup is timed too, as in the first version of this script.)
#
# Postfix: a private instance (postfix -c DIR) with transport_maps
# mapping the domain to smtp:[127.0.0.1]:PORT and defer_transports = smtp:
# N messages are sent to its smtpd with smtp-source, cleanup queues them
# and qmgr parks them in the deferred queue without any delivery attempt.
# The run is `postqueue -f` (which delivers deferred transports too): the
# time is qmgr and smtp(8) alone, the messages already in the queue, as
# mailroom's.
#
# CPU per message: mailroom, the daemon process (run by mailbench, stopped
# with SIGTERM when the sink is done); Postfix, the growth of the master's
# whole process tree (qmgr, smtp, ...) plus postqueue. The sink's CPU is
# counted for neither. Rounds are round-robin, the contenders' order
# alternating. Results: bench/out/remote.raw and bench/out/remote.md.
#
# The daemon runs as the owner of mail_root, QUEUE_USER (nobody; another
# user when nobody's inotify instances are used up by other jobs).
#
# env: RUNS=3 N=5000 MSG_SIZE=5120 TIMEOUT=300s QUEUE_USER=nobody
#      BENCH_DIR=<scratch dir, kept>  CONTENDERS="mailroom postfix"
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/benchlib.sh"
out=$top/bench/out
RUNS=${RUNS:-3} N=${N:-5000} MSG_SIZE=${MSG_SIZE:-5120}
TIMEOUT=${TIMEOUT:-300s} QUEUE_USER=${QUEUE_USER:-nobody} CONTENDERS=${CONTENDERS:-"mailroom postfix"}
POSTFIX=/usr/sbin/postfix SINK=/usr/sbin/smtp-sink SOURCE=/usr/sbin/smtp-source
DOMAIN=bench.test REMOTE=remote.test RCPT=bench@remote.test

need_postfix() { need_debian "$POSTFIX" "$SINK" "$SOURCE" -- postfix; }

make_message() {
	{
		printf 'From: Sender <nobody@%s>\nTo: <%s>\nSubject: benchmark message\n' "$DOMAIN" "$RCPT"
		printf 'Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <bench@bench.test>\n\n'
		awk -v n="$((MSG_SIZE - 200))" 'BEGIN {
			line = "The quick brown fox jumps over the lazy dog, again and again and again."
			for (s = 0; s + length(line) < n; s += length(line) + 1) print line
		}'
	} >"$1"
}

# The mailroom side: a spool made by the daemon itself (started once,
# stopped as soon as the spool exists), then filled through bin/sendmail
# with the daemon down and kept as the template of every run.
setup_mailroom() {
	mr=$work/mailroom
	mkdir -p "$mr/mail"
	: >"$mr/aliases"
	echo "$REMOTE [127.0.0.1]:$sink_port" >"$mr/transport"
	cat >"$mr/mailroom.conf" <<-CONF
		hostname = bench.local
		domains = $DOMAIN
		mail_root = $mr/mail
		passwd_file = $mr/passwd
		aliases_file = $mr/aliases
		spool_dir = $mr/spool
		[sendmail]
		origin = $DOMAIN
		[deliver]
		transport_file = $mr/transport
	CONF
	echo benchpassword | "$bin/mailroom" --config "$mr/mailroom.conf" user add "bench@$DOMAIN" >/dev/null
	chown "$QUEUE_USER:" "$mr/mail"
	chmod 644 "$mr/mailroom.conf" "$mr/passwd" "$mr/aliases" "$mr/transport"
	"$bin/deliver" -c "$mr/mailroom.conf" --queue 2>>"$mr/deliver.log" &
	local pid=$! i
	for ((i = 0; i < 200; i++)); do [ -d "$mr/spool/maildrop" ] && break; sleep 0.1; done
	kill "$pid"
	wait "$pid" || true
	[ -d "$mr/spool/maildrop" ] || { echo "bench: deliver --queue made no $mr/spool/maildrop" >&2; cat "$mr/deliver.log" >&2; exit 1; }
	echo "bench: filling mailroom's maildrop with $N messages" >&2
	"$mb" sendmail -n "$N" -p 8 -msg "$work/msg.eml" -uid "$(id -u nobody)" -gid "$(id -g nobody)" -timeout "$TIMEOUT" \
		-- env -i PATH=/usr/bin:/bin HOME=/ USER=nobody LOGNAME=nobody "$bin/sendmail" -C "$mr/mailroom.conf" -i "$RCPT" >&2
	if [ "${PICKUP_IN_CLOCK:-0}" != 1 ]; then
		setpriv --reuid="$(id -u "$QUEUE_USER")" --regid="$(stat -c %g "$mr/spool/queue")" --clear-groups -- \
			"$mb" pickup -spool "$mr/spool" >&2
	fi
	mv "$mr/spool" "$mr/spool.template"
}

# The Postfix side: a private instance with smtpd on a port of its own
# (only to fill the queue) and smtp deferred until `postqueue -f`.
setup_postfix() {
	pf=$work/postfix
	mkdir -p "$pf/conf" "$pf/queue" "$pf/data"
	chown postfix "$pf/data"
	pf_port=$(free_port)
	cat >"$pf/conf/main.cf" <<-CONF
		# private instance of mailroom's bench-remote.sh; Postfix defaults otherwise
		compatibility_level = 3.6
		queue_directory = $pf/queue
		data_directory = $pf/data
		maillog_file = $pf/maillog
		maillog_file_prefixes = $pf
		syslog_name = postfix-mailroom-bench
		myhostname = bench.local
		mydomain = $DOMAIN
		myorigin = $DOMAIN
		mydestination =
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		mynetworks = 127.0.0.0/8
		alias_maps =
		alias_database =
		transport_maps = inline:{$REMOTE=smtp:[127.0.0.1]:$sink_port}
		defer_transports = smtp
	CONF
	awk -v port="127.0.0.1:$pf_port" '
		/^#/ || /^[ \t]/ || NF < 8 { print; next }
		$1 == "smtp" && $2 == "inet" { $1 = port }
		{ $5 = "n"; print }
	' /etc/postfix/master.cf >"$pf/conf/master.cf"
	grep -q '^postlog' "$pf/conf/master.cf" ||
		echo 'postlog   unix-dgram n  -       n       -       1       postlogd' >>"$pf/conf/master.cf"
	"$POSTFIX" -c "$pf/conf" check
	"$POSTFIX" -c "$pf/conf" start >/dev/null
	wait_port "$pf_port"
}

# fill_postfix: N messages through smtpd into the deferred queue.
fill_postfix() {
	local i
	"$SOURCE" -s 20 -m "$N" -l "$((MSG_SIZE - 250))" -f "nobody@$DOMAIN" -t "$RCPT" "127.0.0.1:$pf_port"
	for ((i = 0; i < 3000; i++)); do
		[ "$(find "$pf/queue/deferred" -type f | wc -l)" -ge "$N" ] &&
			[ -z "$(find "$pf/queue/incoming" "$pf/queue/active" -type f | head -1)" ] && return 0
		sleep 0.1
	done
	echo "bench: Postfix deferred $(find "$pf/queue/deferred" -type f | wc -l) of $N" >&2
	return 1
}

# fresh_spool: the template copied in place of the last run's spool.
fresh_spool() {
	[ -d "$mr/spool" ] && mv "$mr/spool" "$work/trash/spool.$RANDOM.$RANDOM.$$"
	cp -a "$mr/spool.template" "$mr/spool"
}

teardown() {
	set +e
	[ -n "${sink_pid:-}" ] && kill "$sink_pid" 2>/dev/null && wait "$sink_pid"
	[ -n "${pf:-}" ] && "$POSTFIX" -c "$pf/conf" stop >/dev/null 2>&1
	[ -n "${work:-}" ] && rm -rf "$work/trash"
}

start_sink() {
	"$SINK" -u nobody -M "$N" "127.0.0.1:$sink_port" 256 &
	sink_pid=$!
	wait_port "$sink_port"
}

measure() { # who run
	local who=$1 r=$2 line cmd
	case $who in
	mailroom)
		fresh_spool
		start_sink
		cmd=("$mb" remote -n "$N" -timeout "$TIMEOUT" -sink-pid "$sink_pid"
			-- "$bin/deliver" -c "$mr/mailroom.conf" --queue)
		;;
	postfix)
		"$POSTFIX" -c "$pf/conf" status >/dev/null 2>&1 || "$POSTFIX" -c "$pf/conf" start >/dev/null
		postsuper -c "$pf/conf" -d ALL 2>/dev/null || true
		fill_postfix
		start_sink
		cmd=("$mb" remote -n "$N" -timeout "$TIMEOUT" -sink-pid "$sink_pid"
			-server-pid "$(tr -d ' ' <"$pf/queue/pid/master.pid")"
			-- /usr/sbin/postqueue -c "$pf/conf" -f)
		;;
	esac
	line=$("${cmd[@]}" 2>>"$work/$who.log") || echo "bench: $who run=$r failed: $line (see $work/$who.log)" >&2
	kill "$sink_pid" 2>/dev/null || true # still there if the run failed
	wait "$sink_pid" || true
	sink_pid=
	echo "label=$who run=$r size=$(wc -c <"$work/msg.eml") $line load1=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$raw"
}

report() {
	python3 - "$raw" "$N" <<-'PY' | tee "$out/remote.md"
		import re, statistics, sys
		raw, n = sys.argv[1], sys.argv[2]
		rows = {}
		for line in open(raw):
		    kv = dict(re.findall(r'(\w+)=(\S+)', line))
		    if kv.get('finished') != 'true':
		        continue
		    rows.setdefault(kv['label'], []).append(kv)
		def med(k, key):
		    v = [float(r[key]) for r in rows.get(k, [])]
		    return (statistics.median(v), min(v), max(v), len(v)) if v else None
		f = lambda x, fmt: (fmt % x[0]) + (" (%s–%s)" % (fmt % x[1], fmt % x[2]) if x[3] > 1 else "") if x else "–"
		mr, pr = med('mailroom', 'rate'), med('postfix', 'rate')
		mc, pc = med('mailroom', 'cpu_ms_per_msg'), med('postfix', 'cpu_ms_per_msg')
		print("| mailroom msg/s | Postfix msg/s | ratio | mailroom CPU ms/msg | Postfix CPU ms/msg | CPU ratio | runs |")
		print("|---:|---:|---:|---:|---:|---:|---:|")
		ratio = "%.2f×" % (mr[0] / pr[0]) if mr and pr else "–"
		cratio = "%.2f" % (mc[0] / pc[0]) if mc and pc and pc[0] else "–"
		print(f"| {f(mr, '%.0f')} | {f(pr, '%.0f')} | {ratio} | {f(mc, '%.3f')} | {f(pc, '%.3f')} | {cratio} | {min(len(rows.get('mailroom', [])), len(rows.get('postfix', [])))} |")
		print()
		print(f"N = {n} messages per run, one recipient each, to smtp-sink on 127.0.0.1; median (min–max) over the runs;")
		print("rate = N / time from setting delivery going to the sink's N-th message.")
	PY
}

main() {
	need_root remote "submissions and the daemon run as nobody"
	need_postfix
	work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/mailroom-bench-remote.XXXXXX")}
	mkdir -p "$out" "$work/bin" "$work/trash"
	chmod 755 "$work"
	trap teardown EXIT
	bin=$work/bin
	(cd "$top" && CGO_ENABLED=0 go build -o "$bin/" ./cmd/sendmail ./cmd/deliver ./cmd/mailroom ./bench/mailbench)
	mb=$bin/mailbench
	make_message "$work/msg.eml"
	sink_port=$(free_port) sink_pid=
	raw=$out/remote.raw
	: >"$raw"
	for c in $CONTENDERS; do "setup_$c"; done
	local r order who
	for ((r = 1; r <= RUNS; r++)); do
		order=$CONTENDERS
		((r % 2 == 0)) && order=$(echo "$CONTENDERS" | tr ' ' '\n' | tac | tr '\n' ' ')
		for who in $order; do measure "$who" "$r"; done
	done
	report
	{
		echo
		echo "Postfix $(postconf -d -h mail_version 2>/dev/null) (Debian package, defaults: qmgr + smtp(8), from its deferred queue via postqueue -f);"
		echo "mailroom deliver --queue (CGO_ENABLED=0 build, defaults; from $( [ "${PICKUP_IN_CLOCK:-0}" = 1 ] && echo "the maildrop, pickup" || echo "queue/") and daemon start included). Sink: $SINK -M N."
		echo "$(nproc) CPUs, $(df -T "$work" | awk 'NR==2{print $2}'), load1 at the end: $(cut -d' ' -f1 /proc/loadavg). Raw lines: bench/out/remote.raw."
	} | tee -a "$out/remote.md"
}

main "$@"
