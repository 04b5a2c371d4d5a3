#!/usr/bin/env bash
# make bench (part smtp): SMTP in → file in the recipient's new/, mailroom
# (smtpd + deliver --queue) against Debian's Postfix (smtpd → cleanup →
# qmgr → virtual(8) into a Maildir), both with their default durability,
# measured the same way in the same run.
#
# Load: bench/mailbench smtp, one message per connection (EHLO, MAIL, RCPT,
# DATA, QUIT, lockstep, as smtp-source without -d), C clients at once; the
# clock stops when N new files are in the recipient's Maildir. CPU per
# message is the whole server's process tree (utime+stime of the living
# processes plus cutime+cstime of reaped children: mailroom's smtpd and
# deliver, Postfix's master and every daemon it spawned); RSS is summed
# over the same trees at the end of the run.
#
# Rounds go round-robin: in each round every (size, concurrency) is run
# for both contenders, the order of the contenders alternating, each on a
# fresh empty Maildir (the old one is renamed aside, never deleted during a
# measurement: ext4 is slow to create files soon after mass deletes).
# Results: bench/out/smtp.raw (one line per run) and bench/out/smtp.md.
#
# mailroom's daemons run as MR_USER (default mail, else nobody): inotify
# instances are limited per uid (fs.inotify.max_user_instances), and other
# benchmarks on a shared machine use up nobody's, which makes deliver fall
# back to polling the spool every second. A run where it polled anyway is
# marked polled=1 in the raw line and reported under the table.
#
# env: RUNS=3 N=5000 SIZES="5120 102400" CONCS="1 10 50" TIMEOUT=300s
#      BENCH_DIR=<scratch dir, kept>  CONTENDERS="mailroom postfix"  MR_USER
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/benchlib.sh"
out=$top/bench/out
RUNS=${RUNS:-3} N=${N:-5000} SIZES=${SIZES:-"5120 102400"} CONCS=${CONCS:-"1 10 50"}
TIMEOUT=${TIMEOUT:-300s} CONTENDERS=${CONTENDERS:-"mailroom postfix"}
POSTFIX=/usr/sbin/postfix
DOMAIN=bench.test RCPT=bench@bench.test
MR_USER=${MR_USER:-$(getent passwd mail >/dev/null && echo mail || echo nobody)}

need_postfix() { need_debian "$POSTFIX" /usr/lib/postfix/sbin/virtual -- postfix; }

# fresh_maildir DIR: move DIR's new/ and cur/ aside, make empty ones
# owned like DIR.
fresh_maildir() {
	local d=$1 sub
	for sub in new cur; do
		[ -d "$d/$sub" ] && mv "$d/$sub" "$work/trash/$sub.$RANDOM.$RANDOM.$$"
		mkdir "$d/$sub"
		chown --reference="$d" "$d/$sub"
		chmod 700 "$d/$sub"
	done
}

setup_mailroom() {
	mr=$work/mailroom
	mkdir -p "$mr/mail" "$mr/spool"
	: >"$mr/aliases"
	mr_port=$(free_port)
	local user_key=
	[ "$(id -u)" = 0 ] && user_key="user = $MR_USER"
	cat >"$mr/mailroom.conf" <<-CONF
		hostname = bench.local
		domains = $DOMAIN
		mail_root = $mr/mail
		passwd_file = $mr/passwd
		aliases_file = $mr/aliases
		spool_dir = $mr/spool
		[smtpd]
		$user_key
		listen_smtp = 127.0.0.1:$mr_port
		listen_submission =
		listen_submissions =
		max_connections = 1000
		max_connections_per_client = 0
	CONF
	if [ "$(id -u)" = 0 ]; then
		chown "$MR_USER:" "$mr/mail"
	fi
	echo benchpassword | "$bin/mailroom" --config "$mr/mailroom.conf" user add "$RCPT" >/dev/null
	chmod 644 "$mr/mailroom.conf" "$mr/passwd" "$mr/aliases"
	mr_maildir=$mr/mail/$DOMAIN/bench
	"$bin/deliver" -c "$mr/mailroom.conf" --queue 2>>"$mr/deliver.log" &
	mr_deliver=$!
	local i
	for ((i = 0; i < 200; i++)); do [ -d "$mr/spool/queue" ] && break; sleep 0.1; done
	"$bin/smtpd" --config "$mr/mailroom.conf" 2>>"$mr/smtpd.log" &
	mr_smtpd=$!
	wait_port "$mr_port"
}

setup_postfix() {
	pf=$work/postfix
	mkdir -p "$pf/conf" "$pf/queue" "$pf/data" "$pf/mail/$DOMAIN"
	chown postfix "$pf/data"
	chown -R nobody:nogroup "$pf/mail"
	pf_port=$(free_port)
	cat >"$pf/conf/main.cf" <<-CONF
		# private instance of mailroom's bench-smtp.sh; Postfix defaults otherwise
		compatibility_level = 3.6
		queue_directory = $pf/queue
		data_directory = $pf/data
		maillog_file = $pf/maillog
		maillog_file_prefixes = $pf
		syslog_name = postfix-mailroom-bench
		myhostname = bench.local
		mydestination =
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		mynetworks = 127.0.0.0/8
		alias_maps =
		alias_database =
		biff = no
		virtual_mailbox_domains = $DOMAIN
		virtual_mailbox_base = $pf/mail
		virtual_mailbox_maps = inline:{$RCPT=$DOMAIN/bench/}
		virtual_uid_maps = static:$(id -u nobody)
		virtual_gid_maps = static:$(id -g nobody)
		default_transport = error:nothing leaves the bench instance
		relay_transport = error:nothing leaves the bench instance
	CONF
	# Debian's master.cf with chroot off (the queue is a scratch dir) and
	# smtpd on our port.
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
	pf_maildir=$pf/mail/$DOMAIN/bench
	# virtual(8) creates the Maildir on first delivery; make it now.
	mkdir -p "$pf_maildir"/{tmp,new,cur}
	chown -R nobody:nogroup "$pf/mail"
}

teardown() {
	set +e
	[ -n "${mr_smtpd:-}" ] && kill "$mr_smtpd" && wait "$mr_smtpd"
	[ -n "${mr_deliver:-}" ] && kill "$mr_deliver" && wait "$mr_deliver"
	[ -n "${pf:-}" ] && "$POSTFIX" -c "$pf/conf" stop >/dev/null 2>&1
	[ -n "${work:-}" ] && rm -rf "$work/trash"
}

# idle WHO: wait until the server has nothing queued (60 s at most).
idle() {
	local i
	for ((i = 0; i < 600; i++)); do
		case $1 in
		mailroom) [ -z "$(ls -A "$mr/spool/queue")" ] && return 0 ;;
		postfix) [ -z "$(find "$pf/queue/incoming" "$pf/queue/active" "$pf/queue/deferred" -type f 2>/dev/null | head -1)" ] && return 0 ;;
		esac
		sleep 0.1
	done
	echo "bench: $1 still has mail queued" >&2
}

measure() { # who size conc run
	local who=$1 size=$2 conc=$3 r=$4 addr maildir pids line
	case $who in
	mailroom) addr=127.0.0.1:$mr_port maildir=$mr_maildir pids=$mr_smtpd,$mr_deliver ;;
	postfix) addr=127.0.0.1:$pf_port maildir=$pf_maildir pids=$(tr -d ' ' <"$pf/queue/pid/master.pid") ;;
	esac
	idle "$who"
	fresh_maildir "$maildir"
	line=$("$mb" smtp -addr "$addr" -n "$N" -c "$conc" -size "$size" -to "$RCPT" \
		-maildir "$maildir" -server-pid "$pids" -timeout "$TIMEOUT") || echo "bench: $who size=$size c=$conc run=$r failed: $line" >&2
	local polled=0
	[ "$who" = mailroom ] && grep -q 'polling the spool' "$mr/deliver.log" && polled=1
	echo "label=$who size=$size conc=$conc run=$r $line load1=$(cut -d' ' -f1 /proc/loadavg) polled=$polled" | tee -a "$raw"
}

report() {
	python3 - "$raw" "$N" "$RUNS" <<-'PY' | tee "$out/smtp.md"
		import re, statistics, sys
		raw, n, runs = sys.argv[1], sys.argv[2], sys.argv[3]
		rows = {}
		for line in open(raw):
		    kv = dict(re.findall(r'(\w+)=(\S+)', line))
		    if 'e2e_rate' not in kv:
		        continue
		    rows.setdefault((kv['label'], int(kv['size']), int(kv['conc'])), []).append(kv)
		def med(k, key):
		    v = [float(r[key]) for r in rows.get(k, [])]
		    return (statistics.median(v), min(v), max(v), len(v)) if v else None
		print("| body | clients | mailroom msg/s | Postfix msg/s | ratio | mailroom CPU ms/msg | Postfix CPU ms/msg | CPU ratio | mailroom RSS MB | Postfix RSS MB | runs |")
		print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for size, conc in sorted({(s, c) for (_, s, c) in rows}):
		    m, p = ('mailroom', size, conc), ('postfix', size, conc)
		    mr, pr = med(m, 'e2e_rate'), med(p, 'e2e_rate')
		    mc, pc = med(m, 'cpu_ms_per_msg'), med(p, 'cpu_ms_per_msg')
		    mm, pm = med(m, 'rss_kb'), med(p, 'rss_kb')
		    f = lambda x, fmt: (fmt % x[0]) + (" (%s–%s)" % (fmt % x[1], fmt % x[2]) if x[3] > 1 else "") if x else "–"
		    ratio = "%.2f×" % (mr[0] / pr[0]) if mr and pr else "–"
		    cratio = "%.2f" % (mc[0] / pc[0]) if mc and pc and pc[0] else "–"
		    mb = lambda x: "%.0f" % (x[0] / 1024) if x else "–"
		    print(f"| {size // 1024} KB | {conc} | {f(mr, '%.0f')} | {f(pr, '%.0f')} | {ratio} | {f(mc, '%.2f')} | {f(pc, '%.2f')} | {cratio} | {mb(mm)} | {mb(pm)} | {min(len(rows.get(m, [])), len(rows.get(p, [])))} |")
		print()
		print(f"N = {n} messages per run, one per connection; median (min–max) over the runs; rate = N / time until the N-th file is in new/.")
	PY
}

main() {
	need_postfix
	work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/mailroom-bench-smtp.XXXXXX")}
	mkdir -p "$out" "$work/bin" "$work/trash"
	chmod 755 "$work"
	trap teardown EXIT
	bin=$work/bin
	(cd "$top" && CGO_ENABLED=0 go build -o "$bin/" ./cmd/smtpd ./cmd/deliver ./cmd/mailroom ./bench/mailbench)
	mb=$bin/mailbench
	raw=$out/smtp.raw
	: >"$raw"
	for c in $CONTENDERS; do "setup_$c"; done
	local r size conc order who
	for ((r = 1; r <= RUNS; r++)); do
		order=$CONTENDERS
		((r % 2 == 0)) && order=$(echo "$CONTENDERS" | tr ' ' '\n' | tac | tr '\n' ' ')
		for size in $SIZES; do
			for conc in $CONCS; do
				for who in $order; do measure "$who" "$size" "$conc" "$r"; done
			done
		done
	done
	report
	{
		echo
		echo "Postfix $(postconf -d -h mail_version 2>/dev/null) (Debian package, defaults, virtual(8) delivery);"
		echo "mailroom smtpd + deliver --queue (CGO_ENABLED=0 build). $(nproc) CPUs, $(df -T "$work" | awk 'NR==2{print $2}'),"
		echo "load1 at the end: $(cut -d' ' -f1 /proc/loadavg). Raw lines: bench/out/smtp.raw."
		if grep -q 'polled=1' "$raw"; then
			echo "deliver had no inotify instance and polled the spool (1 s) in runs marked polled=1."
		fi
	} | tee -a "$out/smtp.md"
}

main "$@"
