#!/usr/bin/env bash
# make bench: every benchmark of mailroom against its peers (Postfix,
# Dovecot), measured in the same run on this machine. Each part is its own
# script, scripts/bench-<part>.sh, which writes bench/out/<part>.raw (one
# line per run) and bench/out/<part>.md (the table, with ratios).
#
#   scripts/bench.sh            every part
#   scripts/bench.sh mda pop3   only these parts
#
# Each part takes its own environment knobs (RUNS=... and so on; see the
# head of each script).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

parts=("$@")
if [ "${#parts[@]}" = 0 ]; then
	for s in "$top"/scripts/bench-*.sh; do
		p=${s##*/bench-}
		parts+=("${p%.sh}")
	done
fi
for p in "${parts[@]}"; do
	s=$top/scripts/bench-$p.sh
	[ -x "$s" ] || { echo "bench: no part $p ($s)" >&2; exit 2; }
	echo "== bench $p"
	"$s"
done
