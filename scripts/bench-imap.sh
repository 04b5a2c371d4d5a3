#!/usr/bin/env bash
# make bench, part imap: mailroom's imapd against Debian's Dovecot IMAP on
# the same big Maildir, both private instances on free loopback ports,
# measured in the same run, in rounds that alternate the order.
#
# Per round and contender, on a fresh full copy of the fixture (no server
# index or cache: Dovecot's dovecot.index* and imapd's mailroom-cache absent):
#   login-cold   LOGIN+SELECT, the first after the copy
#   login-warm   LOGIN+SELECT again
#   login-empty  LOGIN+SELECT of an empty INBOX (the bcrypt floor)
#   full         one session (mailbench imap -steps full): LOGIN+SELECT,
#                FETCH 1:* (UID FLAGS), UID FETCH 1:* (ENVELOPE) twice,
#                UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]),
#                UID SEARCH SUBJECT, UID SEARCH BODY (an absent word),
#                UID STORE 1:* +FLAGS (\Seen), UID FETCH of 1,000 spread
#                UIDs (BODY.PEEK[]), UID STORE of 1,000 \Deleted + EXPUNGE
#   idle         the server restarted (holding nothing from earlier
#                sessions), then IDLE_N users (idle0001...) log in, each
#                on its own IDLE_MSGS-message INBOX, SELECT and IDLE: memory
#                (PSS) of the server's whole process tree after minus before
#
# The fixture is generated once into $BENCH_DIR/tpl-<msgs>-<seed> and kept
# across runs of this script (100,000 messages take minutes to write).
# Old Maildirs are renamed aside, never deleted during a measurement (ext4
# is slow to create files soon after mass deletes); they are removed at the
# end. Results: bench/out/imap.raw (one line per measurement) and
# bench/out/imap.md.
#
# fs.inotify.max_user_instances (often 128) is per uid: both servers run as
# one uid here, and an IDLE needs an inotify instance per mailbox (Dovecot:
# per process, falling back to polling when out of them).
#
# env: RUNS=3 MSGS=100000 IDLE_N=1000 IDLE_MSGS=50 SEED=1
#      SEARCH=invoice SEARCH_BODY=xyzzy
#      REPEAT=1  run the steps that change nothing (warm and empty logins,
#                FETCH FLAGS, the second ENVELOPE, HEADER.FIELDS, SEARCH
#                SUBJECT) this many times each and keep the fastest
#      TEXT_INDEX_BG=no  imapd's [imapd] text_index_background (unset: the
#                        default, yes); the indexer started by SELECT takes
#                        a CPU while the full session's later steps run
#      BENCH_DIR=${TMPDIR:-/tmp}/mailroom-bench-imap (fixture and users kept)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/benchlib.sh"
out=$top/bench/out
REPEAT=${REPEAT:-1} RUNS=${RUNS:-3} MSGS=${MSGS:-100000} IDLE_N=${IDLE_N:-1000} IDLE_MSGS=${IDLE_MSGS:-50} SEED=${SEED:-1}
SEARCH=${SEARCH:-invoice} SEARCH_BODY=${SEARCH_BODY:-xyzzy}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/mailroom-bench-imap}
DOVECOT=/usr/sbin/dovecot
DOMAIN=bench.test PASS=benchpassword

need_dovecot() { need_debian "$DOVECOT" /usr/lib/dovecot/imap -- dovecot-core dovecot-imapd; }

idle_user() { printf 'idle%04d' "$1"; }

# make_fixture NAME N: a Maildir of N messages at $work/NAME, made once,
# as if its mail had come through deliver with [deliver] text_index = yes:
# with mailroom-textindex.new, the words deliver gathers at delivery
# (Dovecot ignores the file; a fixture made before it existed gets it
# added once).
make_fixture() {
	local dir=$work/$1
	if [ ! -e "$dir/info" ]; then
		rm -rf "$dir"
		mkdir -p "$dir"
		echo "bench: generating $2 messages into $dir (once)" >&2
		"$mb" mkmaildir -n "$2" -seed "$SEED" -index -dir "$dir/Maildir" >"$dir/info.tmp"
		mv "$dir/info.tmp" "$dir/info"
	fi
	if [ ! -e "$dir/Maildir/mailroom-textindex.new" ]; then
		echo "bench: indexing $dir as deliver does (once)" >&2
		"$mb" mkmaildir -index-only -dir "$dir/Maildir" >/dev/null
	fi
}

# add_users: bench and empty through `mailroom user add`; the idle users get
# a copy of bench's hash (the same password, the same BLF-CRYPT line that
# `mailroom user add` wrote: a thousand bcrypt runs would take minutes) and
# a Maildir of their own.
add_users() {
	local u i hash
	for u in bench empty; do
		grep -q "^$u@$DOMAIN:" "$work/passwd" ||
			echo "$PASS" | "$work/bin/mailroom" --config "$work/mailroom.conf" user add "$u@$DOMAIN" >/dev/null
	done
	hash=$(sed -n "s/^bench@$DOMAIN://p" "$work/passwd")
	for ((i = 1; i <= IDLE_N; i++)); do
		u=$(idle_user "$i")
		grep -q "^$u@$DOMAIN:" "$work/passwd" || echo "$u@$DOMAIN:$hash" >>"$work/passwd"
	done
	# Dovecot: the same users and hashes, homes under $dc/home.
	cut -d: -f1,2 "$work/passwd" | while IFS=: read -r addr h; do
		echo "$addr:$h:$uid:$gid::$dc/home/${addr%@*}::"
	done >"$dc/users"
	chown "root:$(id -gn dovecot 2>/dev/null || id -gn)" "$dc/users" 2>/dev/null || true
	chmod 640 "$dc/users"
	mkdir -p "$work/mail/$DOMAIN/empty"/{tmp,new,cur} "$dc/home/empty/Maildir"/{tmp,new,cur}
	# Idle users: their own Maildir each, hard links to the small fixture
	# (LOGIN, SELECT and IDLE never write into a message file).
	for ((i = 1; i <= IDLE_N; i++)); do
		u=$(idle_user "$i")
		for d in "$work/mail/$DOMAIN/$u" "$dc/home/$u/Maildir"; do
			[ -e "$d/.idle-ready" ] && continue
			rm -rf "$d"
			mkdir -p "$d/tmp" "$d/new"
			cp -al "$work/tpl-idle/Maildir/cur" "$d/cur"
			: >"$d/.idle-ready"
		done
	done
}

setup() {
	need_dovecot
	run_as
	work=$BENCH_DIR
	mkdir -p "$out" "$work/bin" "$work/trash"
	chmod 755 "$work"
	(cd "$top" && CGO_ENABLED=0 go build -o "$work/bin/" ./cmd/mailroom ./cmd/imapd ./bench/mailbench)
	mb=$work/bin/mailbench
	make_fixture "tpl-$MSGS-$SEED" "$MSGS"
	make_fixture tpl-idle "$IDLE_MSGS"
	tpl=$work/tpl-$MSGS-$SEED/Maildir
	fixture_info=$(sed "s/ dir=.*//" "$work/tpl-$MSGS-$SEED/info")

	imapd_port=$(free_port)
	cat >"$work/mailroom.conf" <<-CONF
		hostname = bench
		domains = $DOMAIN
		mail_root = $work/mail
		passwd_file = $work/passwd
		aliases_file = $work/aliases
		spool_dir = $work/spool
		plaintext_auth_on_loopback = yes
		log_level = warn
		[imapd]
		listen_imap = 127.0.0.1:$imapd_port
		listen_imaps =
		max_connections = $((IDLE_N + 100))
		max_connections_per_client = $((IDLE_N + 100))
		${TEXT_INDEX_BG:+text_index_background = $TEXT_INDEX_BG}
	CONF
	touch "$work/aliases" "$work/passwd"

	# Dovecot: only IMAP, plaintext on loopback, no TLS, the same users
	# and hashes, Maildirs under $dc/home/<user>/Maildir (its index files
	# beside the messages, its default), enough processes for IDLE_N.
	dc=$work/dovecot
	dovecot_port=$(free_port)
	while [ "$dovecot_port" = "$imapd_port" ]; do dovecot_port=$(free_port); done
	mkdir -p "$dc/run" "$dc/state" "$dc/home"
	cat >"$dc/dovecot.conf" <<-CONF
		base_dir = $dc/run
		state_dir = $dc/state
		instance_name = mailroom-bench-imap
		protocols = imap
		listen = 127.0.0.1
		log_path = $dc/dovecot.log
		ssl = no
		disable_plaintext_auth = no
		login_trusted_networks = 127.0.0.0/8
		mail_location = maildir:~/Maildir
		default_client_limit = $((IDLE_N * 4 + 100))
		passdb {
		  driver = passwd-file
		  args = $dc/users
		}
		userdb {
		  driver = passwd-file
		  args = $dc/users
		}
		service imap-login {
		  process_limit = 200
		  inet_listener imap {
		    address = 127.0.0.1
		    port = $dovecot_port
		  }
		  inet_listener imaps {
		    port = 0
		  }
		}
		service imap {
		  process_limit = $((IDLE_N + 100))
		}
		service auth {
		  client_limit = $((IDLE_N * 2 + 500))
		}
		service anvil {
		  client_limit = $((IDLE_N * 2 + 500))
		}
	CONF
	add_users
	mkdir -p "$work/spool"
	chown -R "$uid:$gid" "$work/mail" "$work/spool" "$dc/home"
}

start_imapd() {
	"$work/bin/imapd" --config "$work/mailroom.conf" 2>>"$work/imapd.log" &
	imapd_pid=$!
	wait_port "$imapd_port"
}

start_dovecot() {
	"$DOVECOT" -c "$dc/dovecot.conf"
	wait_port "$dovecot_port"
	dovecot_pid=$(cat "$dc/run/master.pid")
}

# stop PID: SIGTERM, then wait until it is gone (30 s at most: imapd lets
# sessions finish their command).
stop() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	# Only imapd is our child; Dovecot's master daemonizes.
	[ "$1" != "${imapd_pid:-}" ] || wait "$1" 2>/dev/null || true
}

restart() {
	case $1 in
	imapd) stop "$imapd_pid"; start_imapd ;;
	dovecot) stop "$dovecot_pid"; start_dovecot ;;
	esac
}

stop_servers() {
	stop "${imapd_pid:-}"
	stop "${dovecot_pid:-}"
	imapd_pid= dovecot_pid=
}

# cleanup: the servers stop; the live Maildirs go, the fixtures and users
# stay for the next run.
cleanup() {
	stop_servers
	[ -n "${work:-}" ] || return 0
	local who
	for who in imapd dovecot; do
		[ -e "$(maildir_of "$who" bench)" ] && mv "$(maildir_of "$who" bench)" "$work/trash/$who.end.$RANDOM"
	done
	rm -rf "$work/trash"
}

# maildir_of CONTENDER USER: the Maildir that server reads for USER.
maildir_of() {
	case $1 in
	imapd) echo "$work/mail/$DOMAIN/$2" ;;
	dovecot) echo "$dc/home/$2/Maildir" ;;
	esac
}
port_of() { case $1 in imapd) echo "$imapd_port" ;; dovecot) echo "$dovecot_port" ;; esac; }
pid_of() { case $1 in imapd) echo "$imapd_pid" ;; dovecot) echo "$dovecot_pid" ;; esac; }

# fresh CONTENDER: the bench user's Maildir becomes a full copy of the
# fixture (cp -a: the servers rename and unlink, and the copy must share
# nothing with the template), with the old one renamed aside. No index,
# no uidlist, no cache: the first login is cold. Only what delivery
# leaves is there (mailroom-textindex.new, see make_fixture).
fresh() {
	local d; d=$(maildir_of "$1" bench)
	[ ! -e "$d" ] || mv "$d" "$work/trash/$1.$r.$RANDOM"
	mkdir -p "$d"
	cp -a "$tpl/." "$d/"
	chown -R "$uid:$gid" "$d"
	sync -f "$d"
	# Read every message once: this VM pages out file pages idle for a
	# minute, and neither contender must pay for the disk alone.
	find "$d" -type f -print0 | xargs -0 cat >/dev/null
}

# measure CONTENDER KIND MAILBENCH-ARGS...: one measurement, one raw line.
measure() {
	local who=$1 kind=$2 line; shift 2
	line=$("$mb" imap -addr "127.0.0.1:$(port_of "$who")" -pass "$PASS" "$@")
	echo "label=$who:$kind run=$r $line load1=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$raw"
}

run_contender() {
	local who=$1 d left
	fresh "$who"
	measure "$who" login-cold -steps login -user "bench@$DOMAIN"
	measure "$who" login-warm -steps login -repeat "$REPEAT" -user "bench@$DOMAIN"
	measure "$who" login-empty -steps login -repeat "$REPEAT" -user "empty@$DOMAIN"
	measure "$who" full -steps full -repeat "$REPEAT" -user "bench@$DOMAIN" -search "$SEARCH" -search-body "$SEARCH_BODY"
	d=$(maildir_of "$who" bench)
	left=$(find "$d/cur" "$d/new" -type f | wc -l)
	[ "$left" = $((MSGS - (MSGS < 1000 ? MSGS : 1000))) ] ||
		{ echo "bench: $who left $left messages after expunging 1,000 of $MSGS" >&2; exit 1; }
	restart "$who"
	sleep 1
	measure "$who" idle -idle "$IDLE_N" -mem-pid "$(pid_of "$who")" -user "idle%04d@$DOMAIN"
}

# median LABEL KEY: the median of KEY over the lines of LABEL.
median() {
	grep "^label=$1 " "$raw" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g |
		awk '{v[NR]=$1} END {if (NR == 0) print "-"; else if (NR%2) print v[(NR+1)/2]; else printf "%.4f\n", (v[NR/2]+v[NR/2+1])/2}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b + 0 == 0) print "-"; else printf "%.3f", a / b }'; }

row() { # row NAME KIND KEY UNIT TARGET
	local a b
	a=$(median "imapd:$2" "$3") b=$(median "dovecot:$2" "$3")
	printf '| %s | %s%s | %s%s | %s | %s |\n' "$1" "$a" "$4" "$b" "$4" "$(ratio "$a" "$b")" "$5"
}

report() {
	local spread; spread=$((MSGS < 1000 ? MSGS : 1000))
	{
		echo "| step | imapd | Dovecot | imapd / Dovecot | target |"
		echo "|---|---:|---:|---:|---:|"
		row "LOGIN+SELECT, cold (fresh copy, no index or cache)" login-cold login_select_s " s" "≤ 1"
		row "LOGIN+SELECT, warm" login-warm login_select_s " s" "≤ 1"
		row "LOGIN+SELECT, empty INBOX (the bcrypt floor)" login-empty login_select_s " s" ""
		row "LOGIN+SELECT in the full session" full login_select_s " s" "≤ 1"
		row "FETCH 1:* (UID FLAGS)" full fetch_flags_s " s" "≤ 1"
		row "UID FETCH 1:* (ENVELOPE), first ($(median imapd:full envelope1_mb) MB / $(median dovecot:full envelope1_mb) MB)" full envelope1_s " s" "≤ 1"
		row "UID FETCH 1:* (ENVELOPE), second" full envelope2_s " s" "≤ 1"
		row "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])" full headers_s " s" "≤ 1"
		row "UID SEARCH SUBJECT \"$SEARCH\" ($(median imapd:full search_subject_hits) / $(median dovecot:full search_subject_hits) hits)" full search_subject_s " s" "≤ 1"
		row "UID SEARCH BODY \"$SEARCH_BODY\" ($(median imapd:full search_body_hits) / $(median dovecot:full search_body_hits) hits)" full search_body_s " s" "≤ 0.1"
		row "UID STORE 1:* +FLAGS (\\Seen)" full store_seen_s " s" "≤ 1"
		row "UID FETCH $spread spread UIDs (BODY.PEEK[]) ($(median imapd:full fetch_spread_mb) / $(median dovecot:full fetch_spread_mb) MB)" full fetch_spread_s " s" "≤ 1"
		row "UID STORE $spread +FLAGS.SILENT (\\Deleted)" full store_deleted_s " s" "≤ 1"
		row "EXPUNGE of $spread" full expunge_s " s" "≤ 1"
		row "memory per IDLE connection, PSS of the process tree" idle pss_per_conn_kb " KB" "≤ 0.1"
		row "memory per IDLE connection, RSS of the process tree" idle rss_per_conn_kb " KB" ""
		row "processes with $IDLE_N connections" idle procs_after "" ""
		row "IDLE refused (of $IDLE_N)" idle idle_refused "" ""
		row "$IDLE_N logins+SELECT+IDLE (20 in flight)" idle login_all_s " s" ""
		echo
		[ "$REPEAT" -gt 1 ] && echo "Steps that change nothing: the fastest of $REPEAT in each round."
		echo "$RUNS rounds, medians; contenders alternate order each round. Fixture: \`mailbench mkmaildir -n $MSGS -seed $SEED\`"
		echo "(${fixture_info#mode=mkmaildir }). Dovecot $("$DOVECOT" --version | cut -d' ' -f1), Debian package, one imap process per session;"
		echo "imapd one process, a goroutine per session. Both check the same BLF-CRYPT hashes."
		echo "Idle: $IDLE_N users, each its own $IDLE_MSGS-message INBOX; (tree after − before) / $IDLE_N;"
		echo "imapd's peak RSS (VmHWM) at the end of the idle step: $(median imapd:idle top_hwm_kb) KB."
		echo "fs.inotify.max_user_instances = $(cat /proc/sys/fs/inotify/max_user_instances) (per uid; both servers run as uid $uid)."
		echo "$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(df -T "$work" | awk 'NR==2{print $2}'), Linux $(uname -r); load1 at the end: $(cut -d' ' -f1 /proc/loadavg)."
	} | tee "$out/imap.md"
}

trap cleanup EXIT
trap 'exit 1' INT TERM
setup
start_imapd
start_dovecot
raw=$out/imap.raw
: >"$raw"
for r in $(seq "$RUNS"); do
	if ((r % 2)); then order=(dovecot imapd); else order=(imapd dovecot); fi
	for who in "${order[@]}"; do run_contender "$who"; done
done
report
