#!/usr/bin/env bash
# make bench (part mda): mailroom's delivery measured side by side with Dovecot's
# dovecot-lda in the same run, and against the raw limit of the disk.
#
# Every figure is a median over RUNS rounds; within a round the contenders run
# one after another on fresh Maildirs of the same file system, so background
# noise hits them alike. Results: bench/out/mda.raw (one line per run) and the
# table printed at the end (also bench/out/mda.md).
#
# env: RUNS=3 N_SEQ=300 N_PAR=800 PAR=8 N_DISK=2000 MSG_SIZE=5120 BENCH_DIR=<scratch dir>
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/benchlib.sh"
out=$top/bench/out
RUNS=${RUNS:-3} N_SEQ=${N_SEQ:-300} N_PAR=${N_PAR:-800} PAR=${PAR:-8}
N_DISK=${N_DISK:-2000} MSG_SIZE=${MSG_SIZE:-5120}
LDA=/usr/lib/dovecot/dovecot-lda

need_dovecot() { need_debian "$LDA" -- dovecot-core; }

make_message() {
	{
		printf 'Return-Path: <sender@bench.test>\nFrom: Sender <sender@bench.test>\n'
		printf 'To: <bench@bench.test>\nSubject: benchmark message\n'
		printf 'Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <bench@bench.test>\n\n'
		awk -v n="$((MSG_SIZE - 200))" 'BEGIN {
			line = "The quick brown fox jumps over the lazy dog, again and again and again."
			for (s = 0; s + length(line) < n; s += length(line) + 1) print line
		}'
	} >"$1"
}

setup() {
	need_dovecot
	run_as
	work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/mailroom-bench.XXXXXX")}
	mkdir -p "$out" "$work/bin"
	chmod 755 "$work"
	(cd "$top" && CGO_ENABLED=0 go build -o "$work/bin/" ./cmd/deliver ./cmd/mailroom ./bench/mailbench)
	make_message "$work/msg.eml"

	# mailroom: one virtual user whose Maildir is $work/mail/bench.test/bench.
	cat >"$work/mailroom.conf" <<-CONF
		hostname = bench
		domains = bench.test
		mail_root = $work/mail
		passwd_file = $work/passwd
		aliases_file = $work/aliases
		spool_dir = $work/spool
	CONF
	: >"$work/aliases"
	echo benchpassword | "$work/bin/mailroom" --config "$work/mailroom.conf" user add bench@bench.test >/dev/null

	# Dovecot: dovecot-lda with no daemon, delivering as the invoking uid.
	mkdir -p "$work/dovecot-run"
	cat >"$work/dovecot.conf" <<-CONF
		mail_location = maildir:$work/dovecot-mail
		base_dir = $work/dovecot-run
		log_path = /dev/null
		ssl = no
		protocols =
	CONF
	chown -R "$uid:$gid" "$work"
}

fresh() { # fresh MAILDIR: an empty Maildir owned by the delivering user
	rm -rf "$1"
	mkdir -p "$1"/{tmp,new,cur}
	chown -R "$uid:$gid" "$1"
}

count() { echo $(($(ls "$1/new" | wc -l) + $(ls "$1/cur" | wc -l))); }

# measure LABEL MAILDIR N -- mailbench-args...: one run, one raw line.
measure() {
	local label=$1 dir=$2 n=$3; shift 4
	local line
	line=$("$@")
	if [ -n "$dir" ]; then
		local got; got=$(count "$dir")
		[ "$got" = "$n" ] || { echo "bench: $label delivered $got of $n" >&2; exit 1; }
	fi
	echo "label=$label run=$r $line load1=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$raw"
}

run_round() {
	local mb=$work/bin/mailbench ours=$work/mail/bench.test/bench theirs=$work/dovecot-mail
	local env=(env -i PATH=/usr/bin:/bin HOME="$work" USER=nobody)
	for p in 1 "$PAR"; do
		local n=$N_SEQ; [ "$p" = 1 ] || n=$N_PAR
		# The exec floor: a C program that only reads the message. No
		# process-per-message MDA can beat it on this machine.
		measure "exec-floor:p$p" "" "$n" -- "$mb" mda -n "$n" -p "$p" -msg "$work/msg.eml" -uid "$uid" -gid "$gid" \
			-- "${env[@]}" /bin/cat
		fresh "$theirs"
		measure "dovecot-lda:p$p" "$theirs" "$n" -- "$mb" mda -n "$n" -p "$p" -msg "$work/msg.eml" -uid "$uid" -gid "$gid" \
			-- "${env[@]}" "$LDA" -c "$work/dovecot.conf" -f sender@bench.test
		fresh "$ours"
		measure "deliver:p$p" "$ours" "$n" -- "$mb" mda -n "$n" -p "$p" -msg "$work/msg.eml" -uid "$uid" -gid "$gid" \
			-- "${env[@]}" "$work/bin/deliver" -c "$work/mailroom.conf" -f sender@bench.test bench@bench.test
		fresh "$ours"
		measure "engine:p$p" "$ours" "$N_DISK" -- "$mb" engine -n "$N_DISK" -p "$p" -msg "$work/msg.eml" -dir "$ours"
		fresh "$work/disk"
		measure "disk:p$p" "$work/disk" "$N_DISK" -- "$mb" disk -n "$N_DISK" -p "$p" -size "$(wc -c <"$work/msg.eml")" -dir "$work/disk"
	done
}

# median LABEL KEY: the median of KEY over the runs of LABEL.
median() {
	grep "^label=$1 " "$raw" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g |
		awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'
}

report() {
	{
		echo "| measure | deliveries/s | CPU ms/msg | vs dovecot-lda | vs raw disk |"
		echo "|---|---:|---:|---:|---:|"
		for p in 1 "$PAR"; do
			local dl disk
			dl=$(median "dovecot-lda:p$p" rate) disk=$(median "disk:p$p" rate)
			for l in exec-floor dovecot-lda deliver engine disk; do
				local rate cpu
				rate=$(median "$l:p$p" rate) cpu=$(median "$l:p$p" cpu_ms_per_msg)
				printf '| %s p=%s | %s | %s | %s | %s |\n' "$l" "$p" "$rate" "$cpu" \
					"$(awk -v a="$rate" -v b="$dl" 'BEGIN{printf "%.1fx", a/b}')" \
					"$(awk -v a="$rate" -v b="$disk" 'BEGIN{printf "%.0f%%", 100*a/b}')"
			done
		done
		echo
		echo "$RUNS runs, medians; message $(wc -c <"$work/msg.eml") bytes; p = deliveries in parallel;"
		echo "deliver and dovecot-lda are one process per message (uid $uid); engine is in-process maildir.Deliverer;"
		echo "exec-floor is /bin/cat reading the message: the cost of starting a process here, the ceiling for any MDA;"
		echo "disk is write+fsync+rename+dir fsync in tmp/new of the same file system ($(df -T "$work" | awk 'NR==2{print $2}'))."
	} | tee "$out/mda.md"
}

setup
raw=$out/mda.raw
: >"$raw"
for r in $(seq "$RUNS"); do run_round; done
report
[ -n "${BENCH_DIR:-}" ] || rm -rf "$work"
