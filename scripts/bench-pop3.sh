#!/usr/bin/env bash
# make bench (part pop3): mailroom's pop3d against Debian's Dovecot POP3 on
# the same 10,000-message Maildir, in the same run.
#
# Both servers run privately on free loopback ports with the same accounts
# and the same password hashes (the BLF-CRYPT hashes `mailroom user add`
# writes, copied into Dovecot's passwd-file), so a login costs both the same
# password check. Per round, contenders alternate order; each gets a fresh
# full copy (cp -a) of the fixture and then, with one client
# (bench/mailbench pop3, no pipelining):
#
#   login-cold   connect+USER/PASS+STAT, QUIT  (no server index yet)
#   login-warm   the same again
#   login-empty  the same for a user with an empty Maildir: the password
#                check and session set-up alone
#   full         connect+USER/PASS+STAT, UIDL, RETR 1..n, DELE 1..n, QUIT
#   mem          the server restarted (idle, nothing held from earlier
#                sessions), then MEM_SESSIONS users logged in at once, each on
#                its own 10,000-message Maildir, STAT done: memory of the
#                server's whole process tree (PSS and RSS) after minus
#                before, per session
#
# Old Maildirs are renamed aside, never deleted during a measurement (ext4
# is slow to create files soon after mass deletes); all is removed at the end.
# Results: bench/out/pop3.raw (one line per measurement) and bench/out/pop3.md.
#
# env: RUNS=3 MSGS=10000 MEM_SESSIONS=50 SEED=1 BENCH_DIR=<scratch dir, kept>
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/benchlib.sh"
out=$top/bench/out
RUNS=${RUNS:-3} MSGS=${MSGS:-10000} MEM_SESSIONS=${MEM_SESSIONS:-50} SEED=${SEED:-1}
DOVECOT=/usr/sbin/dovecot
DOMAIN=bench.test PASS=benchpassword

need_dovecot() { need_debian "$DOVECOT" /usr/lib/dovecot/pop3 -- dovecot-core dovecot-pop3d; }

setup() {
	need_dovecot
	run_as
	work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/mailroom-bench-pop3.XXXXXX")}
	mkdir -p "$out" "$work/bin" "$work/trash"
	chmod 755 "$work"
	(cd "$top" && CGO_ENABLED=0 go build -o "$work/bin/" ./cmd/mailroom ./cmd/pop3d ./bench/mailbench)
	mb=$work/bin/mailbench

	# The fixture, made once; every Maildir below is copied from it.
	tpl=$work/tpl/Maildir
	if [ ! -d "$tpl" ]; then
		mkdir -p "$work/tpl"
		"$mb" mkmaildir -n "$MSGS" -seed "$SEED" -dir "$tpl" >"$work/tpl/info"
	fi
	fixture_info=$(sed "s/ dir=.*//" "$work/tpl/info")

	pop3d_port=$(free_port)
	cat >"$work/mailroom.conf" <<-CONF
		hostname = bench
		domains = $DOMAIN
		mail_root = $work/mail
		passwd_file = $work/passwd
		aliases_file = $work/aliases
		spool_dir = $work/spool
		plaintext_auth_on_loopback = yes
		log_level = warn
		[pop3d]
		listen_pop3 = 127.0.0.1:$pop3d_port
		listen_pop3s =
		max_connections = 500
		max_connections_per_client = 500
	CONF
	: >"$work/aliases"
	: >"$work/passwd"
	local users=(pop empty) i
	for ((i = 1; i <= MEM_SESSIONS; i++)); do users+=("$(printf 'mem%03d' "$i")"); done
	for u in "${users[@]}"; do
		grep -q "^$u@$DOMAIN:" "$work/passwd" ||
			echo "$PASS" | "$work/bin/mailroom" --config "$work/mailroom.conf" user add "$u@$DOMAIN" >/dev/null
	done

	# Dovecot: only POP3, plaintext on loopback, no TLS, the same users
	# and hashes, Maildirs under $work/dovecot/home/<user>/Maildir.
	dc=$work/dovecot
	dovecot_port=$(free_port)
	while [ "$dovecot_port" = "$pop3d_port" ]; do dovecot_port=$(free_port); done
	mkdir -p "$dc/run" "$dc/state" "$dc/home"
	cat >"$dc/dovecot.conf" <<-CONF
		base_dir = $dc/run
		state_dir = $dc/state
		instance_name = mailroom-bench-pop3
		protocols = pop3
		listen = 127.0.0.1
		log_path = $dc/dovecot.log
		ssl = no
		disable_plaintext_auth = no
		login_trusted_networks = 127.0.0.0/8
		mail_location = maildir:~/Maildir
		passdb {
		  driver = passwd-file
		  args = $dc/users
		}
		userdb {
		  driver = passwd-file
		  args = $dc/users
		}
		service pop3-login {
		  inet_listener pop3 {
		    address = 127.0.0.1
		    port = $dovecot_port
		  }
		  inet_listener pop3s {
		    port = 0
		  }
		}
	CONF
	cut -d: -f1,2 "$work/passwd" | while IFS=: read -r addr hash; do
		echo "$addr:$hash:$uid:$gid::$dc/home/${addr%@*}::"
	done >"$dc/users"
	chown "root:$(id -gn dovecot 2>/dev/null || id -gn)" "$dc/users" 2>/dev/null || true
	chmod 640 "$dc/users"
	for u in "${users[@]}"; do mkdir -p "$dc/home/$u/Maildir"/{tmp,new,cur}; done

	# Memory users: one 10,000-message Maildir each, hard links to the
	# fixture. Only logins and STAT touch them; neither server writes into
	# a message file, so sharing inodes with the template is safe.
	for u in "${users[@]:2}"; do
		for d in "$work/mail/$DOMAIN/$u" "$dc/home/$u/Maildir"; do
			[ -e "$d/.mem-ready" ] && continue
			rm -rf "$d/cur" "$d/new"
			cp -al "$tpl/cur" "$d/cur"
			mkdir -p "$d/new"
			: >"$d/.mem-ready"
		done
	done
	mkdir -p "$work/spool"
	chown -R "$uid:$gid" "$work/mail" "$work/spool" "$dc/home"
}

start_pop3d() {
	"$work/bin/pop3d" --config "$work/mailroom.conf" 2>>"$work/pop3d.log" &
	pop3d_pid=$!
	wait_port "$pop3d_port"
}

start_dovecot() {
	"$DOVECOT" -c "$dc/dovecot.conf"
	wait_port "$dovecot_port"
	dovecot_pid=$(cat "$dc/run/master.pid")
}

# stop PID: SIGTERM, then wait until it is gone (10 s at most).
stop() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	# Only pop3d is our child; Dovecot's master daemonizes.
	[ "$1" != "${pop3d_pid:-}" ] || wait "$1" 2>/dev/null || true
}

# restart CONTENDER: a fresh server process, holding nothing from earlier
# sessions (a Go process keeps freed heap for a while; the memory step
# must start from an idle server, as Dovecot's does).
restart() {
	case $1 in
	pop3d) stop "$pop3d_pid"; start_pop3d ;;
	dovecot) stop "$dovecot_pid"; start_dovecot ;;
	esac
}

stop_servers() {
	stop "${pop3d_pid:-}"
	stop "${dovecot_pid:-}"
	pop3d_pid= dovecot_pid=
}

cleanup() {
	stop_servers
	[ -n "${work:-}" ] || return 0
	rm -rf "$work/trash"
	[ -n "${BENCH_DIR:-}" ] || rm -rf "$work"
}

# maildir_of CONTENDER USER: the Maildir that server reads for USER.
maildir_of() {
	case $1 in
	pop3d) echo "$work/mail/$DOMAIN/$2" ;;
	dovecot) echo "$dc/home/$2/Maildir" ;;
	esac
}
port_of() { case $1 in pop3d) echo "$pop3d_port" ;; dovecot) echo "$dovecot_port" ;; esac; }
pid_of() { case $1 in pop3d) echo "$pop3d_pid" ;; dovecot) echo "$dovecot_pid" ;; esac; }

# fresh CONTENDER: the pop user's Maildir becomes a full copy of the
# fixture (cp -a: the servers rename and unlink, and the copy must not
# share anything with the template), with the old one renamed aside.
fresh() {
	local d; d=$(maildir_of "$1" pop)
	[ ! -e "$d" ] || mv "$d" "$work/trash/$1.$r.$RANDOM"
	mkdir -p "$d"
	cp -a "$tpl/." "$d/"
	chown -R "$uid:$gid" "$d"
	sync -f "$d"
	# Read every message once: this VM pages out file pages idle for a
	# minute, and the first contender must not pay for the disk alone.
	find "$d" -type f -print0 | xargs -0 cat >/dev/null
}

# measure CONTENDER KIND MAILBENCH-ARGS...: one measurement, one raw line.
measure() {
	local who=$1 kind=$2 line; shift 2
	line=$("$mb" pop3 -addr "127.0.0.1:$(port_of "$who")" -pass "$PASS" -tls=false "$@")
	echo "label=$who:$kind run=$r $line load1=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$raw"
}

run_contender() {
	local who=$1 d
	fresh "$who"
	measure "$who" login-cold -steps login -user "pop@$DOMAIN"
	measure "$who" login-warm -steps login -user "pop@$DOMAIN"
	measure "$who" login-empty -steps login -user "empty@$DOMAIN"
	measure "$who" full -steps full -user "pop@$DOMAIN"
	d=$(maildir_of "$who" pop)
	local left; left=$(find "$d/cur" "$d/new" -type f | wc -l)
	[ "$left" = 0 ] || { echo "bench: $who left $left messages after DELE all + QUIT" >&2; exit 1; }
	restart "$who"
	sleep 1
	measure "$who" mem -sessions "$MEM_SESSIONS" -mem-pid "$(pid_of "$who")" -user "mem%03d@$DOMAIN"
}

# median LABEL KEY: the median of KEY over the lines of LABEL.
median() {
	grep "^label=$1 " "$raw" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g |
		awk '{v[NR]=$1} END {if (NR == 0) print "-"; else if (NR%2) print v[(NR+1)/2]; else printf "%.4f\n", (v[NR/2]+v[NR/2+1])/2}'
}

diff_med() { awk -v a="$(median "$1:login-warm" login_stat_s)" -v b="$(median "$1:login-empty" login_stat_s)" 'BEGIN { printf "%.4f", a - b }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

row() { # row NAME KIND KEY UNIT TARGET
	local a b
	a=$(median "pop3d:$2" "$3") b=$(median "dovecot:$2" "$3")
	printf '| %s | %s%s | %s%s | %s | %s |\n' "$1" "$a" "$4" "$b" "$4" "$(ratio "$a" "$b")" "$5"
}

report() {
	{
		echo "| step | pop3d | Dovecot | pop3d / Dovecot | target |"
		echo "|---|---:|---:|---:|---:|"
		row "USER/PASS+STAT, cold (fresh copy, no index)" login-cold login_stat_s " s" "≤ 1"
		row "USER/PASS+STAT, warm" login-warm login_stat_s " s" "≤ 1"
		row "USER/PASS+STAT, empty Maildir (password check floor)" login-empty login_stat_s " s" ""
		printf '| opening the maildrop (warm − empty) | %s s | %s s | %s | |\n' "$(diff_med pop3d)" "$(diff_med dovecot)" "$(ratio "$(diff_med pop3d)" "$(diff_med dovecot)")"
		row "USER/PASS+STAT in the full session" full login_stat_s " s" "≤ 1"
		row "UIDL" full uidl_s " s" "≤ 1"
		row "RETR all ($(median pop3d:full retr_mb) MB)" full retr_all_s " s" "≤ 1"
		row "DELE all" full dele_all_s " s" ""
		row "QUIT (commit)" full quit_s " s" ""
		row "DELE all + QUIT" full dele_quit_s " s" "≤ 1"
		row "memory per session, PSS of the process tree" mem pss_per_session_kb " KB" "≤ 0.25"
		row "memory per session, RSS of the process tree" mem rss_per_session_kb " KB" ""
		row "$MEM_SESSIONS logins at once (20 in flight)" mem login_all_s " s" ""
		echo
		echo "$RUNS rounds, medians; contenders alternate order each round. Fixture: \`mailbench mkmaildir -n $MSGS -seed $SEED\`"
		echo "(${fixture_info#mode=mkmaildir }). Dovecot $("$DOVECOT" --version | cut -d' ' -f1), Debian package, one pop3 process per session;"
		echo "pop3d one process, a goroutine per session. Both check the same BLF-CRYPT hashes. RETR replies verified"
		echo "(CRLF, terminator, size = LIST size; mismatches: pop3d $(median pop3d:full size_mismatch), Dovecot $(median dovecot:full size_mismatch))."
		echo "Memory: $MEM_SESSIONS users logged in at once on their own $MSGS-message Maildirs; (tree after − before) / $MEM_SESSIONS;"
		echo "pop3d's peak RSS (VmHWM) at the end of the memory step: $(median pop3d:mem top_hwm_kb) KB."
		echo "$(nproc) CPUs, $(df -T "$work" | awk 'NR==2{print $2}'); load1 at the end: $(cut -d' ' -f1 /proc/loadavg)."
	} | tee "$out/pop3.md"
}

trap cleanup EXIT
trap 'exit 1' INT TERM
setup
start_pop3d
start_dovecot
raw=$out/pop3.raw
: >"$raw"
# Warm both servers' view of the memory Maildirs (indexes, uidlists) once,
# so that every measured round sees the same state.
r=0
for who in pop3d dovecot; do
	"$mb" pop3 -addr "127.0.0.1:$(port_of "$who")" -pass "$PASS" -tls=false -sessions "$MEM_SESSIONS" \
		-mem-pid "$(pid_of "$who")" -user "mem%03d@$DOMAIN" >/dev/null
done
for r in $(seq "$RUNS"); do
	if ((r % 2)); then order=(dovecot pop3d); else order=(pop3d dovecot); fi
	for who in "${order[@]}"; do run_contender "$who"; done
done
report
