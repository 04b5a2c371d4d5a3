#!/bin/sh
# lint-units.sh: check mailroom's systemd units with "systemd-analyze verify"
# and fail on any complaint, warnings included (verify itself exits 0 after
# "Unknown key ..., ignoring").
#
# verify also checks that every ExecStart= program exists and is executable,
# and that the units they depend on (sockets.target, ...) exist. The units
# name the installed paths (/usr/sbin/smtpd), which a build machine does not
# have, so the check runs against a scratch root (--root=): the units are
# put where make install puts them (lib/systemd/system), mailroom's own
# programs are stood in for by stub executables at the paths the units name,
# any other program they run (/bin/kill) is copied from this machine, and so
# are this machine's targets. No running systemd is needed: this works in a
# container (systemd 252, Debian 12).
#
# Usage: scripts/lint-units.sh            (from anywhere in the checkout)
# Needs: systemd-analyze (Debian package "systemd").
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "lint-units: systemd-analyze not found (Debian package: systemd)" >&2
	exit 1
fi

# The units: the installed ones (etc/systemd/*) and the per-connection
# alternatives an admin copies by hand (etc/systemd/per-connection/*).
set -- etc/systemd/*.service etc/systemd/*.socket etc/systemd/per-connection/*
for f in "$@"; do
	if [ ! -f "$f" ]; then
		echo "lint-units: no units matched $f" >&2
		exit 1
	fi
done

root=$(mktemp -d "${TMPDIR:-/tmp}/lint-units.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM
unitdir="$root/lib/systemd/system"
mkdir -p "$unitdir"
cp "$@" "$unitdir/"

# The targets the units hang off, as this machine has them.
for d in /usr/lib/systemd/system /lib/systemd/system; do
	if [ -d "$d" ]; then
		cp -L "$d"/*.target "$unitdir/"
		break
	fi
done

# mailroom's programs: the directories under cmd/.
programs=$(ls cmd)

# Every absolute program named by an Exec*= line: a stub if it is one of
# mailroom's programs, else this machine's own copy. A name matching neither
# stays missing, so that verify reports it.
grep -h '^Exec[A-Za-z]*=' "$@" |
	sed -e 's/^[^=]*=//' -e 's/^[-@:+!]*//' -e 's/[[:space:]].*//' |
	sort -u |
	while read -r exe; do
		case "$exe" in
		/*) ;;
		*) continue ;; # systemd looks bare names up in its own PATH
		esac
		mkdir -p "$root$(dirname "$exe")"
		name=$(basename "$exe")
		if printf '%s\n' "$programs" | grep -qx "$name"; then
			printf '#!/bin/sh\nexit 0\n' >"$root$exe"
			chmod 0755 "$root$exe"
		elif [ -x "$exe" ]; then
			cp -L "$exe" "$root$exe"
		fi
	done

units=""
for f in "$@"; do
	units="$units $unitdir/$(basename "$f")"
done

# --man=no: the Documentation= pages are mailroom's own, not installed here;
# test/units_test.go checks that each one exists in man/.
status=0
# shellcheck disable=SC2086 # $units is a list of paths without spaces
out=$(systemd-analyze verify --root="$root" --man=no $units 2>&1) || status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
	printf '%s\n' "$out" | sed "s|$unitdir/||g" >&2
	echo "lint-units: systemd-analyze verify failed (status $status)" >&2
	exit 1
fi
echo "lint-units: $# units verified"
