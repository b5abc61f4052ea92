#!/usr/bin/env bash
# pg-test-server.sh: a throwaway PostgreSQL server for the test suite.
#
# Usage:
#   scripts/pg-test-server.sh [start] [ENV_FILE]   start (or reuse) the server; print
#                                                  `export ALUM_TEST_POSTGRES_URL='postgres://...'`
#                                                  on stdout and, if ENV_FILE is given, write that
#                                                  line to ENV_FILE too
#   scripts/pg-test-server.sh ENV_FILE             the same as `start ENV_FILE`
#   scripts/pg-test-server.sh url                  print the URL of the running server
#   scripts/pg-test-server.sh status               exit 0 if the server is running
#   scripts/pg-test-server.sh stop                 stop the server and delete its files
#
# Typical use:
#   eval "$(scripts/pg-test-server.sh)" && go test ./...; scripts/pg-test-server.sh stop
#
# The server listens on 127.0.0.1 on a free port (trust authentication, user `postgres`) and on a
# Unix socket inside its state directory, and has an empty database `alum_test`. It is tuned for
# tests, not for keeping data: fsync, synchronous_commit and full_page_writes are off.
# Starting twice reuses the running server; stopping a stopped server is not an error.
#
# Environment:
#   ALUM_PG_TEST_DIR  state directory (data, socket, log, url); default /tmp/alum-pg-test-<uid>
#   PG_BIN            directory holding initdb/pg_ctl/psql; default /usr/lib/postgresql/15/bin,
#                     else the newest /usr/lib/postgresql/*/bin, else `pg_config --bindir`
#
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (from the
# Debian `postgresql` package), which owns the state directory. Installing PostgreSQL is not this
# script's job (.ci/run does it on CI: apt-get install postgresql).
set -euo pipefail

DB_NAME=alum_test
DB_USER=postgres
STATE_DIR=${ALUM_PG_TEST_DIR:-/tmp/alum-pg-test-$(id -u)}
DATA_DIR=$STATE_DIR/data
SOCK_DIR=$STATE_DIR/sock
LOG_FILE=$STATE_DIR/postgres.log
URL_FILE=$STATE_DIR/url

log() { printf 'pg-test-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

find_pg_bin() {
	if [[ -n ${PG_BIN:-} ]]; then
		[[ -x $PG_BIN/initdb ]] || die "PG_BIN=$PG_BIN has no initdb"
		return
	fi
	if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
		PG_BIN=/usr/lib/postgresql/15/bin
		return
	fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x $d/initdb ]]; then PG_BIN=$d; return; fi
	done
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir)
		if [[ -x $d/initdb ]]; then PG_BIN=$d; return; fi
	fi
	die "PostgreSQL server binaries (initdb, pg_ctl) not found; install them (Debian: apt-get install postgresql) or set PG_BIN"
}

# as_pg CMD...: run a command as the user that owns the cluster, from inside the state directory
# (the postgres user may not be allowed into the caller's working directory).
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		(cd "$STATE_DIR" && runuser -u postgres -- "$@" 9>&-)
	else
		(cd "$STATE_DIR" && "$@" 9>&-)
	fi
}

# postmaster_pid: the pid of the server's postmaster if that process is alive (a zombie, which a
# container whose init does not reap children can leave behind, counts as dead).
postmaster_pid() {
	local pid state
	[[ -r $DATA_DIR/postmaster.pid ]] || return 1
	pid=$(head -n 1 "$DATA_DIR/postmaster.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
	state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d ' ' -f 1) || return 1
	[[ $state != Z && $state != X ]] || return 1
	echo "$pid"
}

# is_running: the postmaster is alive and accepts connections on the recorded port.
is_running() {
	local port
	postmaster_pid >/dev/null || return 1
	[[ -s $STATE_DIR/port ]] || return 1
	port=$(cat "$STATE_DIR/port")
	"$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 5
}

# kill_server: stop whatever postmaster the data directory has, gently first.
kill_server() {
	local pid i
	pid=$(postmaster_pid) || return 0
	as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w -t 20 stop >/dev/null 2>&1 && return 0
	as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m immediate -w -t 10 stop >/dev/null 2>&1 && return 0
	kill -KILL "$pid" 2>/dev/null || true
	for i in $(seq 1 50); do
		postmaster_pid >/dev/null || return 0
		sleep 0.1
	done
	die "could not stop the postmaster (pid $pid) of $DATA_DIR"
}

port_in_use() {
	local port=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
	fi
}

free_port() {
	local i port
	for i in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		if ! port_in_use "$port"; then
			echo "$port"
			return
		fi
	done
	die "no free TCP port found"
}

print_url() {
	local url
	url=$(cat "$URL_FILE")
	local line="export ALUM_TEST_POSTGRES_URL='$url'"
	if [[ -n ${1:-} ]]; then
		printf '%s\n' "$line" >"$1"
	fi
	printf '%s\n' "$line"
}

ensure_database() {
	local port=$1 exists
	exists=$("$PG_BIN/psql" -X -q -At -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres \
		-c "select 1 from pg_database where datname = '$DB_NAME'")
	if [[ $exists != 1 ]]; then
		"$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB_NAME"
	fi
}

cmd_start() {
	local env_file=${1:-}
	find_pg_bin

	if is_running && [[ -s $URL_FILE ]]; then
		log "reusing the server in $STATE_DIR"
		ensure_database "$(cat "$STATE_DIR/port")"
		print_url "$env_file"
		return
	fi

	# Whatever is left over (a crashed or half-created server) is thrown away.
	if [[ -d $DATA_DIR ]]; then
		log "discarding the stale server in $STATE_DIR"
		kill_server
	fi
	rm -rf "$STATE_DIR"
	mkdir -p "$STATE_DIR" "$SOCK_DIR"
	chmod 700 "$STATE_DIR"
	if [[ $(id -u) -eq 0 ]]; then
		getent passwd postgres >/dev/null || die "running as root needs a 'postgres' user (Debian package postgresql creates it)"
		chown -R postgres: "$STATE_DIR"
	fi

	log "initdb in $DATA_DIR ($PG_BIN)"
	as_pg "$PG_BIN/initdb" -D "$DATA_DIR" -U "$DB_USER" --auth=trust -E UTF8 --no-locale --no-sync \
		>"$STATE_DIR/initdb.log" 2>&1 || { cat "$STATE_DIR/initdb.log" >&2; die "initdb failed"; }

	# initdb's pg_hba.conf with --auth=trust: trust for local sockets and 127.0.0.1/::1.
	as_pg tee -a "$DATA_DIR/postgresql.conf" >/dev/null <<CONF

# --- throwaway test server (scripts/pg-test-server.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK_DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
log_min_messages = warning
include_if_exists = 'port.conf'
CONF

	local attempt port
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		printf 'port = %s\n' "$port" | as_pg tee "$DATA_DIR/port.conf" >/dev/null
		log "starting on 127.0.0.1:$port (attempt $attempt)"
		if as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 start >/dev/null 2>&1; then
			break
		fi
		port=
		log "start failed; last log lines:"
		tail -n 5 "$LOG_FILE" >&2 || true
	done
	[[ -n $port ]] || die "PostgreSQL did not start; see $LOG_FILE"

	ensure_database "$port"
	printf '%s\n' "$port" >"$STATE_DIR/port"
	printf 'postgres://%s@127.0.0.1:%s/%s?sslmode=disable\n' "$DB_USER" "$port" "$DB_NAME" >"$URL_FILE"
	log "ready: $(cat "$URL_FILE")"
	print_url "$env_file"
}

cmd_stop() {
	if [[ ! -d $STATE_DIR ]]; then
		log "not running ($STATE_DIR does not exist)"
		return
	fi
	if [[ -d $DATA_DIR ]]; then
		find_pg_bin
		kill_server
		log "stopped"
	fi
	rm -rf "$STATE_DIR"
}

# One start/stop at a time per state directory (several test runs may share the default one).
lock() {
	command -v flock >/dev/null 2>&1 || return 0
	exec 9>"$STATE_DIR.lock"
	flock -w 300 9 || die "timed out waiting for $STATE_DIR.lock"
}

case ${1:-start} in
start) shift $(($# > 0 ? 1 : 0)); lock; cmd_start "${1:-}" ;;
stop) lock; cmd_stop ;;
status)
	find_pg_bin
	if is_running; then log "running: $(cat "$URL_FILE" 2>/dev/null)"; else log "not running"; exit 1; fi
	;;
url)
	find_pg_bin
	is_running && [[ -s $URL_FILE ]] || die "not running"
	cat "$URL_FILE"
	;;
-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
-*) die "unknown option '$1' (usage: start [ENV_FILE] | ENV_FILE | stop | status | url)" ;;
*) lock; cmd_start "$1" ;; # `pg-test-server.sh ENV_FILE` is short for `start ENV_FILE`
esac
