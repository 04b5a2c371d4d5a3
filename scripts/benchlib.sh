# Shell helpers shared by scripts/bench-*.sh (sourced by each; not a part of make bench).

# need_debian PATH... -- PACKAGE...: installs the Debian packages with
# apt-get unless every PATH is already executable.
need_debian() {
	local missing=
	while [ "$1" != -- ]; do
		[ -x "$1" ] || missing=1
		shift
	done
	shift
	[ -z "$missing" ] && return 0
	echo "bench: installing Debian's $*" >&2
	local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# need_root PART WHY: this part of make bench runs only as root.
need_root() {
	[ "$(id -u)" = 0 ] && return 0
	echo "bench: part $1 needs root ($2)" >&2
	exit 2
}

# run_as sets uid and gid: those of nobody when we are root (the daemons
# drop to the owner of mail_root; the peers' userdb says the same uid),
# else the invoking user's.
run_as() {
	if [ "$(id -u)" = 0 ]; then
		uid=$(id -u nobody) gid=$(id -g nobody)
	else
		uid=$(id -u) gid=$(id -g)
	fi
}

# free_port: a loopback TCP port nobody listens on.
free_port() {
	local p
	for ((p = 20000 + RANDOM % 20000; ; p++)); do
		[ -z "$(ss -Htln "sport = :$p")" ] && { echo "$p"; return; }
	done
}

# wait_port PORT: until something accepts there (20 s at most).
wait_port() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ -n "$(ss -Htln "sport = :$1")" ] && return 0
		sleep 0.1
	done
	echo "bench: nothing listens on port $1" >&2
	return 1
}
