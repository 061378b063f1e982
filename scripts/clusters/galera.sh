#!/usr/bin/env bash
# scripts/clusters/galera.sh - a throwaway 3-node MariaDB Galera cluster on one machine.
#
# Why it exists: the cluster suites and benches of issue 22 need a real
# multi-primary MariaDB (write conflicts between nodes, a node dying and
# rejoining) without extra machines, and on ports apart from the single
# MariaDB on 3306 so that both can run at once.
#
# Usage (as root):
#   scripts/clusters/galera.sh [start]       bring all 3 nodes up and Synced (idempotent)
#   scripts/clusters/galera.sh stop          shut every node down cleanly
#   scripts/clusters/galera.sh status        port, pid, state and cluster size of each node
#   scripts/clusters/galera.sh kill N        kill -9 node N (1..3)
#   scripts/clusters/galera.sh start-node N  restart node N and wait until it has rejoined (IST/SST)
#   scripts/clusters/galera.sh reset         stop, then delete all state
#
# Nodes: 127.0.0.1:3311, 3312, 3313; root over TCP without a password:
#   mariadb --protocol=tcp -h 127.0.0.1 -P 3311 -u root idempotency_galera
# Galera ports: gcomm 4571-4573, IST 4581-4583, rsync SST 4591-4593.
#
# Environment: GALERA_DIR (state, default /var/tmp/idempotency-galera),
#              GALERA_TIMEOUT (seconds to wait for Synced, default 90).
set -euo pipefail

GALERA_DIR=${GALERA_DIR:-/var/tmp/idempotency-galera}
GALERA_TIMEOUT=${GALERA_TIMEOUT:-90}
PROVIDER=/usr/lib/galera/libgalera_smm.so
MARIADBD=/usr/sbin/mariadbd
DB_NAME=idempotency_galera
NODES=(1 2 3)
# Written into the state dir so that `reset` never deletes a directory it did not create.
MARKER=.idempotency-galera

log() { printf '[galera %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

port_of() { echo $((3310 + $1)); }
dir_of() { echo "$GALERA_DIR/node$1"; }
cnf_of() { echo "$(dir_of "$1")/my.cnf"; }
data_of() { echo "$(dir_of "$1")/data"; }
sock_of() { echo "$(dir_of "$1")/mariadbd.sock"; }
errlog_of() { echo "$(dir_of "$1")/error.log"; }

check_node_arg() {
  [[ ${1:-} =~ ^[123]$ ]] || die "expected a node number 1..3, got '${1:-}'"
}

# --- setup -------------------------------------------------------------------

ensure_packages() {
  if [[ ! -e $PROVIDER ]] || ! command -v rsync >/dev/null; then
    log "installing galera-4 and rsync"
    DEBIAN_FRONTEND=noninteractive apt-get install -y galera-4 rsync >&2
  fi
}

# mariadbd must run as `mysql`, and everything it (and the rsync SST script it
# spawns) writes must be owned by `mysql`: run as root, rsync SST fails with
# "cannot stat destination: Permission denied".
ensure_layout() {
  if [[ -d $GALERA_DIR && ! -e $GALERA_DIR/$MARKER ]] && [[ -n $(ls -A "$GALERA_DIR") ]]; then
    die "$GALERA_DIR exists and was not made by this script; set GALERA_DIR elsewhere"
  fi
  mkdir -p "$GALERA_DIR"
  touch "$GALERA_DIR/$MARKER"
  local n
  for n in "${NODES[@]}"; do
    mkdir -p "$(data_of "$n")"
    write_cnf "$n"
  done
  chown -R mysql:mysql "$GALERA_DIR"
}

# One defaults file per node; --defaults-file keeps /etc/mysql (the single
# server's config) out of it. Sized for a 2-core machine with other servers.
write_cnf() {
  local n=$1 d
  d=$(dir_of "$n")
  cat >"$(cnf_of "$n")" <<EOF
# Written by scripts/clusters/galera.sh; rewritten on every start.
[mysqld]
user=mysql
port=$(port_of "$n")
bind-address=127.0.0.1
skip-name-resolve
datadir=$d/data
socket=$d/mariadbd.sock
pid-file=$d/mariadbd.pid
log-error=$d/error.log
max_connections=300
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
default_storage_engine=InnoDB
innodb_buffer_pool_size=64M
innodb_log_file_size=48M
innodb_flush_log_at_trx_commit=2
binlog_format=ROW
innodb_autoinc_lock_mode=2

wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=idempotency_galera
wsrep_cluster_address=gcomm://127.0.0.1:4571,127.0.0.1:4572,127.0.0.1:4573
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:457$n;ist.recv_addr=127.0.0.1:458$n"
wsrep_sst_receive_address=127.0.0.1:459$n
wsrep_sst_method=rsync
wsrep_node_address=127.0.0.1
wsrep_node_name=node$n
EOF
}

# --- process and query helpers -----------------------------------------------

# The pid of node N's mariadbd, found by its own --defaults-file (the pid file
# only appears after SST, and the SST helpers carry the same path in their
# arguments, hence the anchored pattern).
node_pid() {
  pgrep -f -- "^$MARIADBD --defaults-file=$(cnf_of "$1")( |\$)" | head -n1
}
is_running() { [[ -n $(node_pid "$1") ]]; }

# A killed daemon stays a zombie until PID 1 reaps it (1-2 s here); count it as gone.
pid_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}

# Query node N over its socket as root; prints tab-separated rows, no header.
q() {
  local n=$1; shift
  mariadb --no-defaults --socket="$(sock_of "$n")" -u root -N -B --connect-timeout=2 -e "$*" 2>/dev/null
}

# Print "state size status last_committed" of node N, or nothing if it does not answer.
wsrep_state() {
  q "$1" "SELECT
      MAX(IF(VARIABLE_NAME='WSREP_LOCAL_STATE_COMMENT', VARIABLE_VALUE, NULL)),
      MAX(IF(VARIABLE_NAME='WSREP_CLUSTER_SIZE', VARIABLE_VALUE, NULL)),
      MAX(IF(VARIABLE_NAME='WSREP_CLUSTER_STATUS', VARIABLE_VALUE, NULL)),
      MAX(IF(VARIABLE_NAME='WSREP_LAST_COMMITTED', VARIABLE_VALUE, NULL))
    FROM information_schema.GLOBAL_STATUS
    WHERE VARIABLE_NAME IN ('WSREP_LOCAL_STATE_COMMENT','WSREP_CLUSTER_SIZE',
                            'WSREP_CLUSTER_STATUS','WSREP_LAST_COMMITTED')" || true
}

# True when node N is Synced, in the Primary component, with at least $2 members.
is_synced() {
  local state size status _
  read -r state size status _ <<<"$(wsrep_state "$1")" || true
  [[ ${state:-} == Synced && ${status:-} == Primary && ${size:-0} -ge $2 ]]
}

all_synced() {
  local n
  for n in "${NODES[@]}"; do is_synced "$n" "${#NODES[@]}" || return 1; done
}

diagnose() {
  local n
  for n in "$@"; do
    log "--- node $n: pid=$(node_pid "$n" || true) state=[$(wsrep_state "$n")]; tail of $(errlog_of "$n"):"
    tail -n 25 "$(errlog_of "$n")" 2>/dev/null >&2 || true
  done
}

# --- grastate.dat and choosing who bootstraps -------------------------------

grastate_field() {
  sed -n "s/^$2:[[:space:]]*//p" "$(data_of "$1")/grastate.dat" 2>/dev/null | head -n1
}

has_data() { [[ -d $(data_of "$1")/mysql ]]; }

# After a crash grastate.dat says seqno -1; the real position is in InnoDB and
# `mariadbd --wsrep-recover` reads it (under a second per node here).
recovered_seqno() {
  local n=$1 rlog
  rlog="$(dir_of "$n")/recover.log"
  : >"$rlog"; chown mysql:mysql "$rlog"
  "$MARIADBD" --defaults-file="$(cnf_of "$n")" --wsrep-recover --log-error="$rlog" >/dev/null 2>&1 || true
  sed -n 's/.*WSREP: Recovered position: [^:]*:\(-\{0,1\}[0-9]*\).*/\1/p' "$rlog" | tail -n1
}

# Pick the node whose state is the most recent: the one Galera marked
# safe_to_bootstrap (the last to leave cleanly), else the highest seqno,
# ties to the lowest node number. A node ahead of the bootstrap node could not
# rejoin ("states diverged"), which is why the choice matters at all.
choose_bootstrap_node() {
  local n best='' best_seqno=-2 seqno candidates=()
  for n in "${NODES[@]}"; do has_data "$n" && candidates+=("$n"); done
  if ((${#candidates[@]} == 0)); then echo 1; return; fi
  for n in "${candidates[@]}"; do
    if [[ $(grastate_field "$n" safe_to_bootstrap) == 1 ]]; then echo "$n"; return; fi
  done
  for n in "${candidates[@]}"; do
    seqno=$(grastate_field "$n" seqno); seqno=${seqno:--1}
    if ((seqno == -1)); then
      log "node $n stopped uncleanly; recovering its position"
      seqno=$(recovered_seqno "$n"); seqno=${seqno:--1}
    fi
    log "node $n: seqno $seqno"
    if ((seqno > best_seqno)); then best=$n; best_seqno=$seqno; fi
  done
  echo "$best"
}

force_safe_to_bootstrap() {
  local f
  f="$(data_of "$1")/grastate.dat"
  [[ -f $f ]] && sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$f"
  return 0
}

# --- starting nodes ------------------------------------------------------------

init_datadir() {
  local n=$1
  log "node $n: mariadb-install-db"
  # `normal` gives root@localhost an empty password instead of unix_socket only.
  mariadb-install-db --defaults-file="$(cnf_of "$n")" --user=mysql \
    --auth-root-authentication-method=normal --skip-test-db \
    >"$(dir_of "$n")/install-db.log" 2>&1 \
    || { tail -n 30 "$(dir_of "$n")/install-db.log" >&2; die "mariadb-install-db failed for node $n"; }
}

# Started as root; mariadbd drops to `mysql` itself (user=mysql in the cnf).
# setsid keeps it alive after this script and out of the caller's process group.
launch_node() {
  local n=$1; shift
  rm -f "$(sock_of "$n")" "$(sock_of "$n").lock" "$(dir_of "$n")/mariadbd.pid"
  log "node $n: starting mariadbd on port $(port_of "$n") $*"
  setsid "$MARIADBD" --defaults-file="$(cnf_of "$n")" "$@" \
    </dev/null >>"$(dir_of "$n")/stdout.log" 2>&1 &
}

# Wait until node N is Synced in a Primary component of at least MIN members.
# A joiner that dies on the way (typically "states diverged" after a forced
# bootstrap elsewhere) is restarted once without its grastate.dat, which makes
# it take a full SST from the cluster.
wait_synced() {
  local n=$1 min=$2 deadline=$((SECONDS + GALERA_TIMEOUT)) retried=0
  until is_synced "$n" "$min"; do
    if ! is_running "$n"; then
      sleep 1
      is_running "$n" && continue
      if ((retried == 0 && min > 1)); then
        log "node $n exited while joining; retrying with a full SST"
        tail -n 10 "$(errlog_of "$n")" >&2 || true
        [[ -f $(data_of "$n")/grastate.dat ]] && mv -f "$(data_of "$n")/grastate.dat" "$(data_of "$n")/grastate.dat.discarded"
        retried=1
        launch_node "$n"
      else
        diagnose "${NODES[@]}"
        die "node $n exited before reaching Synced"
      fi
    fi
    if ((SECONDS >= deadline)); then
      diagnose "${NODES[@]}"
      die "node $n not Synced (cluster size >= $min) after ${GALERA_TIMEOUT}s"
    fi
    sleep 0.5
  done
  log "node $n: Synced"
}

cluster_size_seen_by() {
  local state size _
  read -r state size _ <<<"$(wsrep_state "$1")" || true
  echo "${size:-0}"
}

# Launch joiner N and return once the Primary component has admitted it
# (about a second), not once it is Synced, so that state transfers overlap.
# Joiners launched at the same instant may see only each other, form a
# non-Primary view and lose ~6 s merging into the cluster: hence one by one.
launch_joiner() {
  local n=$1 m ref='' before deadline
  for m in "${NODES[@]}"; do
    [[ $m != "$n" ]] && is_synced "$m" 1 && { ref=$m; break; }
  done
  launch_node "$n"
  [[ -n $ref ]] || return 0
  before=$(cluster_size_seen_by "$ref")
  deadline=$((SECONDS + 15))
  while (($(cluster_size_seen_by "$ref") <= before && SECONDS < deadline)) && is_running "$n"; do
    sleep 0.2
  done
}

# Root without a password over TCP from 127.0.0.1 (skip-name-resolve makes a
# TCP client from 127.0.0.1 match root@127.0.0.1, not root@localhost).
# Account statements replicate, so running this on one node is enough.
ensure_accounts_and_db() {
  local n=$1
  q "$n" "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
          ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '';
          GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
          CREATE USER IF NOT EXISTS 'root'@'localhost';
          ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING '' OR unix_socket;
          GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION;
          CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4;" \
    || die "could not set up accounts and database on node $n"
}

# Some nodes run but none is in a Primary component (e.g. two of three were
# killed): promote the most advanced survivor so that others can join it.
ensure_primary_component() {
  local n state size status committed best='' best_committed=-2
  for n in "${NODES[@]}"; do
    is_running "$n" || continue
    read -r state size status committed <<<"$(wsrep_state "$n")" || true
    [[ ${status:-} == Primary ]] && return 0
    if [[ -n ${committed:-} ]] && ((committed > best_committed)); then best=$n; best_committed=$committed; fi
  done
  [[ -n $best ]] || return 0  # nobody answers yet (e.g. mid-SST); wait_synced will tell
  log "no Primary component; bootstrapping it on node $best (pc.bootstrap)"
  q "$best" "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'" || true
}

# --- subcommands ---------------------------------------------------------------------

cmd_start() {
  local t0=$SECONDS n running=() boot
  [[ $EUID -eq 0 ]] || die "run as root (mariadbd is started as root and drops to mysql)"
  if all_synced; then
    ensure_accounts_and_db 1
    log "already running: ${#NODES[@]} nodes Synced"
    return 0
  fi
  ensure_packages
  ensure_layout
  for n in "${NODES[@]}"; do is_running "$n" && running+=("$n"); done

  if ((${#running[@]} == 0)); then
    boot=$(choose_bootstrap_node)
    has_data "$boot" || init_datadir "$boot"
    force_safe_to_bootstrap "$boot"
    log "bootstrapping a new cluster on node $boot"
    launch_node "$boot" --wsrep-new-cluster
    wait_synced "$boot" 1
    ensure_accounts_and_db "$boot"
  else
    log "nodes running: ${running[*]}"
    ensure_primary_component
  fi

  for n in "${NODES[@]}"; do is_running "$n" || launch_joiner "$n"; done
  for n in "${NODES[@]}"; do wait_synced "$n" "${#NODES[@]}"; done
  for n in "${NODES[@]}"; do is_synced "$n" 1 && { ensure_accounts_and_db "$n"; break; }; done
  log "cluster up: ${#NODES[@]} nodes Synced in $((SECONDS - t0))s (ports $(port_of 1)-$(port_of 3), database $DB_NAME)"
}

stop_node() {
  local n=$1 pid deadline
  pid=$(node_pid "$n") || true
  [[ -n $pid ]] || return 0
  log "node $n: shutting down (pid $pid)"
  mariadb-admin --no-defaults --socket="$(sock_of "$n")" -u root --connect-timeout=2 shutdown 2>/dev/null \
    || kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 60))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "node $n: still alive after 60s; kill -9"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.3
  done
}

# Highest node first, so that node 1 leaves last and is marked safe_to_bootstrap.
cmd_stop() {
  local n
  for n in 3 2 1; do stop_node "$n"; done
  log "stopped"
}

cmd_status() {
  local n pid state size status committed
  printf '%-5s %-6s %-8s %-22s %-5s %-9s %s\n' node port pid state size component last_committed
  for n in "${NODES[@]}"; do
    pid=$(node_pid "$n") || true
    state='' size='' status='' committed=''
    if [[ -n $pid ]]; then
      read -r state size status committed <<<"$(wsrep_state "$n")" || true
      state=${state:-starting/joining}
    else
      state=stopped
    fi
    printf '%-5s %-6s %-8s %-22s %-5s %-9s %s\n' "$n" "$(port_of "$n")" "${pid:--}" \
      "$state" "${size:--}" "${status:--}" "${committed:--}"
  done
}

cmd_kill() {
  local n=$1 pid
  check_node_arg "$n"
  pid=$(node_pid "$n") || true
  [[ -n $pid ]] || { log "node $n is not running"; return 0; }
  kill -KILL "$pid"
  while pid_alive "$pid"; do sleep 0.1; done
  log "node $n (pid $pid) killed with SIGKILL"
}

cmd_start_node() {
  local n=$1 m others=0 t0=$SECONDS
  check_node_arg "$n"
  [[ $EUID -eq 0 ]] || die "run as root"
  for m in "${NODES[@]}"; do [[ $m != "$n" ]] && is_running "$m" && others=1; done
  if ((others == 0)); then
    log "no other node is running: starting the whole cluster instead"
    cmd_start
    return
  fi
  if is_synced "$n" 2; then log "node $n already Synced"; return 0; fi
  ensure_packages
  ensure_layout
  ensure_primary_component
  is_running "$n" || launch_node "$n"
  wait_synced "$n" 2
  log "node $n rejoined in $((SECONDS - t0))s"
}

cmd_reset() {
  cmd_stop
  if [[ -d $GALERA_DIR ]]; then
    [[ -e $GALERA_DIR/$MARKER ]] || die "$GALERA_DIR was not made by this script; not deleting it"
    rm -rf -- "$GALERA_DIR"
    log "deleted $GALERA_DIR"
  fi
}

main() {
  local cmd=${1:-start}
  case $cmd in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill) cmd_kill "${2:-}" ;;
    start-node) cmd_start_node "${2:-}" ;;
    reset) cmd_reset ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d' ;;
    *) die "unknown command '$cmd' (start|stop|status|kill N|start-node N|reset)" ;;
  esac
}

main "$@"
