#!/usr/bin/env bash
# make bench (part sendmail): local submission, `bin/sendmail -C conf -i
# RCPT` against Postfix's `sendmail -C DIR -i RCPT` (which execs the
# setgid postdrop), measured the same way in the same run.
#
# What a caller (cron, mutt, PHP's mail()) waits for is sendmail's exit:
# for both, the message is then durable in the maildrop. So the clock of
# each invocation runs from fork to exit 0; `bench/mailbench sendmail`
# starts one process per message with a ~5 KB message on stdin, P at a
# time, as an unprivileged user (nobody), and reports the median and p95
# latency per invocation, the rate over the run, and the CPU of the
# sendmail processes and what they ran (RUSAGE_CHILDREN).
#
# Nothing consumes the maildrop during a measurement: mailroom's deliver
# --queue and Postfix's master (hence pickup) are stopped, so neither
# side's consumer competes for the CPU. Each run starts on an empty
# maildrop (the old one renamed aside, never deleted during a
# measurement) and checks that it holds N files at the end.
#
# Postfix's sendmail accepts -C DIR from a non-root user only when the
# default main.cf lists DIR in alternate_config_directories. Rather than
# edit /etc/postfix/main.cf, each Postfix run is made in a private mount
# namespace (unshare -m) where a copy of it with that line is bind-mounted
# over the original; nothing outside the run sees it. This needs root.
#
# Rounds go round-robin, the contenders' order alternating each round.
# Results: bench/out/sendmail.raw (one line per run), bench/out/sendmail.md.
#
# env: RUNS=3 N=1000 PARS="1 8" MSG_SIZE=5120 TIMEOUT=300s
#      BENCH_DIR=<scratch dir, kept>  CONTENDERS="mailroom postfix"
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/benchlib.sh"
out=$top/bench/out
RUNS=${RUNS:-3} N=${N:-1000} PARS=${PARS:-"1 8"} MSG_SIZE=${MSG_SIZE:-5120}
TIMEOUT=${TIMEOUT:-300s} CONTENDERS=${CONTENDERS:-"mailroom postfix"}
POSTFIX=/usr/sbin/postfix PF_SENDMAIL=/usr/sbin/sendmail
DOMAIN=bench.test RCPT=bench@bench.test

need_postfix() { need_debian "$POSTFIX" /usr/sbin/postdrop -- postfix; }

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

# The mailroom side: a config nobody can read and a spool made by the
# queue daemon itself (started once, stopped as soon as the spool exists).
setup_mailroom() {
	mr=$work/mailroom
	mkdir -p "$mr/mail"
	: >"$mr/aliases"
	cat >"$mr/mailroom.conf" <<-CONF
		hostname = bench.local
		domains = $DOMAIN
		mail_root = $mr/mail
		passwd_file = $mr/passwd
		aliases_file = $mr/aliases
		spool_dir = $mr/spool
		[sendmail]
		origin = $DOMAIN
	CONF
	echo benchpassword | "$bin/mailroom" --config "$mr/mailroom.conf" user add "$RCPT" >/dev/null
	chown nobody:nogroup "$mr/mail"
	chmod 644 "$mr/mailroom.conf" "$mr/passwd" "$mr/aliases"
	"$bin/deliver" -c "$mr/mailroom.conf" --queue 2>>"$mr/deliver.log" &
	local pid=$! i
	for ((i = 0; i < 200; i++)); do [ -d "$mr/spool/maildrop" ] && break; sleep 0.1; done
	kill "$pid"
	wait "$pid" || true
	[ -d "$mr/spool/maildrop" ] || { echo "bench: deliver --queue made no $mr/spool/maildrop" >&2; cat "$mr/deliver.log" >&2; exit 1; }
	mr_drop=$mr/spool/maildrop
}

# The Postfix side: a private instance whose queue directory is made by
# one start and stop; its master stays down during the runs.
setup_postfix() {
	pf=$work/postfix
	mkdir -p "$pf/conf" "$pf/queue" "$pf/data"
	chown postfix "$pf/data"
	cat >"$pf/conf/main.cf" <<-CONF
		# private instance of mailroom's bench-sendmail.sh; Postfix defaults otherwise
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
		alias_maps =
		alias_database =
		default_transport = error:nothing leaves the bench instance
		relay_transport = error:nothing leaves the bench instance
	CONF
	awk '
		/^#/ || /^[ \t]/ || NF < 8 { print; next }
		$1 == "smtp" && $2 == "inet" { next }
		{ $5 = "n"; print }
	' /etc/postfix/master.cf >"$pf/conf/master.cf"
	grep -q '^postlog' "$pf/conf/master.cf" ||
		echo 'postlog   unix-dgram n  -       n       -       1       postlogd' >>"$pf/conf/master.cf"
	"$POSTFIX" -c "$pf/conf" check
	"$POSTFIX" -c "$pf/conf" start >/dev/null
	"$POSTFIX" -c "$pf/conf" stop >/dev/null
	pf_drop=$pf/queue/maildrop
	[ -d "$pf_drop" ] || { echo "bench: Postfix made no $pf_drop" >&2; exit 1; }
	cp /etc/postfix/main.cf "$work/etc-main.cf"
	echo "alternate_config_directories = $pf/conf" >>"$work/etc-main.cf"
}

teardown() {
	set +e
	[ -n "${pf:-}" ] && "$POSTFIX" -c "$pf/conf" status >/dev/null 2>&1 && "$POSTFIX" -c "$pf/conf" stop >/dev/null 2>&1
	[ -n "${work:-}" ] && rm -rf "$work/trash"
}

# fresh_drop DIR: move the maildrop aside and make an empty one like it.
fresh_drop() {
	local d=$1 aside
	aside=$work/trash/drop.$RANDOM.$RANDOM.$$
	mv "$d" "$aside"
	mkdir "$d"
	chown --reference="$aside" "$d"
	chmod --reference="$aside" "$d"
}

measure() { # who p run
	local who=$1 p=$2 r=$3 drop cmd line got
	case $who in
	mailroom)
		drop=$mr_drop
		cmd=("$mb" sendmail -n "$N" -p "$p" -msg "$work/msg.eml" -uid "$uid" -gid "$gid" -timeout "$TIMEOUT"
			-- "${env[@]}" "$bin/sendmail" -C "$mr/mailroom.conf" -i "$RCPT")
		;;
	postfix)
		drop=$pf_drop
		# shellcheck disable=SC2016 # $1 is expanded by the inner sh
		cmd=(unshare --mount --propagation private sh -c 'mount --bind "$1" /etc/postfix/main.cf && shift && exec "$@"'
			sh "$work/etc-main.cf"
			"$mb" sendmail -n "$N" -p "$p" -msg "$work/msg.eml" -uid "$uid" -gid "$gid" -timeout "$TIMEOUT"
			-- "${env[@]}" "$PF_SENDMAIL" -C "$pf/conf" -i "$RCPT")
		;;
	esac
	fresh_drop "$drop"
	line=$("${cmd[@]}") || echo "bench: $who p=$p run=$r failed: $line" >&2
	got=$(find "$drop" -type f | wc -l)
	[ "$got" = "$N" ] || echo "bench: $who p=$p run=$r: $got files in $drop, want $N" >&2
	echo "label=$who p=$p run=$r $line dropped=$got load1=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$raw"
}

report() {
	python3 - "$raw" "$N" <<-'PY' | tee "$out/sendmail.md"
		import re, statistics, sys
		raw, n = sys.argv[1], sys.argv[2]
		rows = {}
		for line in open(raw):
		    kv = dict(re.findall(r'(\w+)=(\S+)', line))
		    if 'lat_p50_ms' not in kv:
		        continue
		    rows.setdefault((kv['label'], int(kv['p'])), []).append(kv)
		def med(k, key):
		    v = [float(r[key]) for r in rows.get(k, [])]
		    return (statistics.median(v), min(v), max(v), len(v)) if v else None
		f = lambda x, fmt: (fmt % x[0]) + (" (%s–%s)" % (fmt % x[1], fmt % x[2]) if x[3] > 1 else "") if x else "–"
		ratio = lambda a, b: "%.2f×" % (a[0] / b[0]) if a and b and b[0] else "–"
		print("| parallel | mailroom /s | Postfix /s | rate ratio | mailroom p50 ms | Postfix p50 ms | p50 ratio (Postfix/ours) | mailroom p95 ms | Postfix p95 ms | mailroom CPU ms | Postfix CPU ms | runs |")
		print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for p in sorted({p for (_, p) in rows}):
		    m, q = ('mailroom', p), ('postfix', p)
		    mr, pr = med(m, 'rate'), med(q, 'rate')
		    m50, p50 = med(m, 'lat_p50_ms'), med(q, 'lat_p50_ms')
		    m95, p95 = med(m, 'lat_p95_ms'), med(q, 'lat_p95_ms')
		    mc, pc = med(m, 'cpu_ms_per_msg'), med(q, 'cpu_ms_per_msg')
		    print(f"| {p} | {f(mr, '%.0f')} | {f(pr, '%.0f')} | {ratio(mr, pr)} | {f(m50, '%.2f')} | {f(p50, '%.2f')} | {ratio(p50, m50)} | {f(m95, '%.2f')} | {f(p95, '%.2f')} | {f(mc, '%.2f')} | {f(pc, '%.2f')} | {min(len(rows.get(m, [])), len(rows.get(q, [])))} |")
		print()
		print(f"N = {n} submissions per run, one process each; median (min–max) over the runs; latency = fork to exit 0 of one invocation;")
		print("CPU = per submission, the sendmail process and everything it ran (Postfix: sendmail + postdrop).")
	PY
}

main() {
	need_root sendmail "submissions run as nobody; Postfix's -C needs a private mount namespace"
	need_postfix
	work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/mailroom-bench-sendmail.XXXXXX")}
	mkdir -p "$out" "$work/bin" "$work/trash"
	chmod 755 "$work"
	trap teardown EXIT
	bin=$work/bin
	(cd "$top" && CGO_ENABLED=0 go build -o "$bin/" ./cmd/sendmail ./cmd/deliver ./cmd/mailroom ./bench/mailbench)
	mb=$bin/mailbench
	uid=$(id -u nobody) gid=$(id -g nobody)
	env=(env -i PATH=/usr/bin:/bin HOME=/ USER=nobody LOGNAME=nobody)
	make_message "$work/msg.eml"
	raw=$out/sendmail.raw
	: >"$raw"
	for c in $CONTENDERS; do "setup_$c"; done
	local r p order who
	for ((r = 1; r <= RUNS; r++)); do
		order=$CONTENDERS
		((r % 2 == 0)) && order=$(echo "$CONTENDERS" | tr ' ' '\n' | tac | tr '\n' ' ')
		for p in $PARS; do
			for who in $order; do measure "$who" "$p" "$r"; done
		done
	done
	report
	{
		echo
		echo "Postfix $(postconf -d -h mail_version 2>/dev/null) (Debian package: sendmail → setgid postdrop; master stopped);"
		echo "mailroom sendmail (CGO_ENABLED=0 build; deliver --queue stopped). Both run as nobody with a $(wc -c <"$work/msg.eml")-byte message."
		echo "$(nproc) CPUs, $(df -T "$work" | awk 'NR==2{print $2}'), load1 at the end: $(cut -d' ' -f1 /proc/loadavg). Raw lines: bench/out/sendmail.raw."
	} | tee -a "$out/sendmail.md"
}

main "$@"
