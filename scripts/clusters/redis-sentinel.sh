#!/usr/bin/env bash
# scripts/clusters/redis-sentinel.sh - a throwaway Sentinel-managed Redis on one machine.
#
# Why it exists: the cluster suites and benches of issue 22 need a Redis whose
# primary can die and be replaced by a replica under Sentinel's control (what
# a client following Sentinel sees), without extra machines, and on ports
# apart from the single Redis on 6379 so that both can run at once.
#
# Usage:
#   scripts/clusters/redis-sentinel.sh [start]         primary, 2 replicas, 3 sentinels up and agreeing (idempotent)
#   scripts/clusters/redis-sentinel.sh stop            shut everything down (sentinels first)
#   scripts/clusters/redis-sentinel.sh status          roles, links, and what each sentinel reports
#   scripts/clusters/redis-sentinel.sh kill PORT       kill -9 a data node (7101-7103) or a sentinel (26381-26383)
#   scripts/clusters/redis-sentinel.sh start-node PORT restart it (an old primary comes back as a replica)
#   scripts/clusters/redis-sentinel.sh master          port of the current primary, as the sentinels say
#   scripts/clusters/redis-sentinel.sh reset           stop, then delete all state
#
# Data nodes: 127.0.0.1:7101 (first primary), 7102, 7103; sentinels:
# 127.0.0.1:26381-26383, master name `idempotency`, quorum 2,
# down-after-milliseconds 2000, failover-timeout 10000. No password, no
# persistence: a restarted data node comes back empty and resyncs.
#
# Environment: REDIS_SENTINEL_DIR (state, default /var/tmp/idempotency-redis-sentinel),
#              REDIS_SENTINEL_TIMEOUT (seconds to wait for health, default 60).
set -euo pipefail

DIR=${REDIS_SENTINEL_DIR:-/var/tmp/idempotency-redis-sentinel}
TIMEOUT=${REDIS_SENTINEL_TIMEOUT:-60}
DATA_PORTS=(7101 7102 7103)
SENTINEL_PORTS=(26381 26382 26383)
FIRST_MASTER=7101
NAME=idempotency
QUORUM=2
DOWN_AFTER_MS=2000
# Written into the state dir so that `reset` never deletes a directory it did not create.
MARKER=.idempotency-redis-sentinel

log() { printf '[redis-sentinel %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_data_port() { [[ " ${DATA_PORTS[*]} " == *" $1 "* ]]; }
is_sentinel_port() { [[ " ${SENTINEL_PORTS[*]} " == *" $1 "* ]]; }
check_port_arg() {
  is_data_port "${1:-}" || is_sentinel_port "${1:-}" \
    || die "expected a port among ${DATA_PORTS[*]} ${SENTINEL_PORTS[*]}, got '${1:-}'"
}

# redis-cli against one server; `timeout` because a wedged server would block forever.
rcli() {
  local port=$1; shift
  timeout 3 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}
answers() { [[ $(rcli "$1" PING) == PONG ]]; }
any_answers() {
  local p
  for p in "$@"; do answers "$p" && return 0; done
  return 1
}

# A field of INFO output (lines "name:value\r").
info_field() { tr -d '\r' | sed -n "s/^$1://p"; }
# A field of a flat field/value reply (SENTINEL MASTER), one item per line.
pair_field() { awk -v k="$1" 'prev == k {print; exit} {prev = $0}'; }

# --- processes -------------------------------------------------------------------

# The pid of the server on PORT, from its pid file, checked against the process
# title (redis-server 127.0.0.1:PORT [sentinel]) so that a stale pid file never
# designates another process.
node_pid() {
  local port=$1 pid
  pid=$(cat "$DIR/$port/redis.pid" 2>/dev/null) || return 0
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "redis-server .*:$port\b" \
    && echo "$pid"
  return 0
}

# A killed daemon stays a zombie until PID 1 reaps it (1-2 s here); count it as gone.
pid_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $st && $st != Z ]]
}

ensure_dir() {
  if [[ -d $DIR && ! -e $DIR/$MARKER ]] && [[ -n $(ls -A "$DIR") ]]; then
    die "$DIR exists and was not made by this script; set REDIS_SENTINEL_DIR elsewhere"
  fi
  mkdir -p "$DIR"
  touch "$DIR/$MARKER"
}

wait_answers() {
  local port=$1 deadline=$((SECONDS + 10))
  until answers "$port"; do
    ((SECONDS < deadline)) || { tail -n 20 "$DIR/$port/log" >&2; die "$port does not answer"; }
    sleep 0.1
  done
}

# A data node, as a replica of MASTER unless it is MASTER itself.
# repl-diskless-sync-delay 0: by default a primary waits 5 s for more replicas
# before a full sync, which every restarted node would pay. Nothing is
# persisted: these are test data.
launch_data_node() {
  local port=$1 master=$2 replicaof=()
  [[ $port != "$master" ]] && replicaof=(--replicaof 127.0.0.1 "$master")
  mkdir -p "$DIR/$port"
  log "starting data node $port${replicaof:+ as replica of $master}"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --repl-diskless-sync-delay 0 "${replicaof[@]}" \
    --daemonize yes --dir "$DIR/$port" --logfile "$DIR/$port/log" --pidfile "$DIR/$port/redis.pid"
  wait_answers "$port"
}

# Sentinels rewrite their config file (known replicas and sentinels, epochs,
# the current master), so it is written only once: rewriting it on each start
# would make a sentinel forget a failover. No `sentinel myid` line is written,
# so each sentinel picks its own id (copies of one id would make them ignore
# each other).
write_sentinel_conf() {
  local port=$1 master=$2 conf="$DIR/$1/sentinel.conf"
  [[ -s $conf ]] && return 0
  mkdir -p "$DIR/$port"
  cat >"$conf" <<EOF
# Written by scripts/clusters/redis-sentinel.sh, then rewritten by the sentinel itself.
port $port
bind 127.0.0.1
daemonize yes
pidfile $DIR/$port/redis.pid
logfile $DIR/$port/log
dir $DIR/$port
sentinel monitor $NAME 127.0.0.1 $master $QUORUM
sentinel down-after-milliseconds $NAME $DOWN_AFTER_MS
sentinel failover-timeout $NAME 10000
sentinel parallel-syncs $NAME 1
EOF
}

launch_sentinel() {
  local port=$1 master=$2
  write_sentinel_conf "$port" "$master"
  log "starting sentinel $port"
  redis-server "$DIR/$port/sentinel.conf" --sentinel
  wait_answers "$port"
}

stop_server() {
  local port=$1 pid deadline
  pid=$(node_pid "$port")
  [[ -n $pid ]] || return 0
  if is_sentinel_port "$port"; then
    rcli "$port" SHUTDOWN >/dev/null || true
  else
    rcli "$port" SHUTDOWN NOSAVE >/dev/null || true
  fi
  deadline=$((SECONDS + 15))
  while pid_alive "$pid"; do
    ((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; }
    sleep 0.1
  done
}

# --- who is the primary --------------------------------------------------------------

# The primary as the first answering sentinel says.
sentinel_master() {
  local s port
  for s in "${SENTINEL_PORTS[@]}"; do
    port=$(rcli "$s" SENTINEL get-master-addr-by-name "$NAME" | sed -n 2p)
    [[ -n $port ]] && { echo "$port"; return 0; }
  done
  return 1
}

# With no sentinel up: the master in the config file with the highest epoch
# (the sentinels rewrite `sentinel monitor` after a failover), else 7101.
configured_master() {
  local s epoch best_epoch=-1 best=$FIRST_MASTER conf
  for s in "${SENTINEL_PORTS[@]}"; do
    conf="$DIR/$s/sentinel.conf"
    [[ -s $conf ]] || continue
    epoch=$(awk -v n="$NAME" '$1 == "sentinel" && $2 == "config-epoch" && $3 == n {print $4}' "$conf")
    epoch=${epoch:-0}
    if ((epoch > best_epoch)); then
      best_epoch=$epoch
      best=$(awk -v n="$NAME" '$1 == "sentinel" && $2 == "monitor" && $3 == n {print $5}' "$conf")
    fi
  done
  echo "${best:-$FIRST_MASTER}"
}

# Only ever one of our data ports: a stale or hand-edited sentinel config must
# not make this script start a server elsewhere.
current_master() {
  local m
  m=$(sentinel_master || configured_master)
  if is_data_port "$m"; then echo "$m"; else echo "$FIRST_MASTER"; fi
}

# The master a data node PORT that is about to start should follow. Nothing
# is persisted, so a primary restarted before the sentinels replaced it would
# come back empty and its replicas would copy the empty data set: while a
# replica is up and a sentinel still names PORT, wait (bounded) for the failover.
master_for() {
  local port=$1 m others=() p deadline=$((SECONDS + 3 * DOWN_AFTER_MS / 1000 + 15))
  for p in "${DATA_PORTS[@]}"; do [[ $p != "$port" ]] && others+=("$p"); done
  m=$(current_master)
  while [[ $m == "$port" ]] && sentinel_master >/dev/null && any_answers "${others[@]}"; do
    if ((SECONDS >= deadline)); then
      log "the sentinels did not replace $port; starting it as primary (its data are lost)"
      break
    fi
    sleep 0.2
    m=$(current_master)
  done
  echo "$m"
}

# --- health --------------------------------------------------------------------------

# Everything answers; the primary has its two replicas linked; every sentinel
# names the same primary, sees it up, knows the two other sentinels and both
# replicas (without which it could not fail over).
healthy() {
  local m s p reply repl
  m=$(sentinel_master) || return 1
  for s in "${SENTINEL_PORTS[@]}"; do
    [[ $(rcli "$s" SENTINEL get-master-addr-by-name "$NAME" | sed -n 2p) == "$m" ]] || return 1
    reply=$(rcli "$s" SENTINEL master "$NAME") || return 1
    [[ $(pair_field flags <<<"$reply") == master ]] || return 1
    [[ $(pair_field num-other-sentinels <<<"$reply") == $((${#SENTINEL_PORTS[@]} - 1)) ]] || return 1
    [[ $(rcli "$s" SENTINEL replicas "$NAME" | awk 'prev == "flags" && $0 == "slave" {n++} {prev = $0} END {print n + 0}') \
        == $((${#DATA_PORTS[@]} - 1)) ]] || return 1
  done
  for p in "${DATA_PORTS[@]}"; do
    repl=$(rcli "$p" INFO replication) || return 1
    if [[ $p == "$m" ]]; then
      [[ $(info_field role <<<"$repl") == master ]] || return 1
    else
      [[ $(info_field role <<<"$repl") == slave && $(info_field master_port <<<"$repl") == "$m" &&
         $(info_field master_link_status <<<"$repl") == up ]] || return 1
    fi
  done
}

wait_healthy() {
  local deadline=$((SECONDS + TIMEOUT))
  until healthy; do
    if ((SECONDS >= deadline)); then
      diagnose
      return 1
    fi
    sleep 0.2
  done
}

diagnose() {
  local p
  cmd_status >&2 || true
  for p in "${DATA_PORTS[@]}" "${SENTINEL_PORTS[@]}"; do
    log "--- tail of $DIR/$p/log"
    tail -n 5 "$DIR/$p/log" 2>/dev/null >&2 || true
  done
}

# --- subcommands ---------------------------------------------------------------------

start_data_node() {
  local port=$1
  launch_data_node "$port" "$(master_for "$port")"
}

start_sentinel() {
  launch_sentinel "$1" "$(current_master)"
}

cmd_start() {
  local t0=$SECONDS p m stopped=()
  if healthy; then
    log "already running: primary $(sentinel_master), ${#DATA_PORTS[@]} data nodes, ${#SENTINEL_PORTS[@]} sentinels"
    return 0
  fi
  ensure_dir
  # The primary first, so that replicas have something to follow; replicas
  # before the sentinels, so that a sentinel's first look at the primary
  # already lists them (it looks again only every 10 s).
  m=$(current_master)
  answers "$m" || start_data_node "$m"
  for p in "${DATA_PORTS[@]}"; do answers "$p" || start_data_node "$p"; done
  for p in "${SENTINEL_PORTS[@]}"; do answers "$p" || start_sentinel "$p"; done
  if ! wait_healthy; then
    log "no agreement after ${TIMEOUT}s; recreating everything from scratch"
    cmd_reset
    ensure_dir
    for p in "${DATA_PORTS[@]}"; do launch_data_node "$p" "$FIRST_MASTER"; done
    for p in "${SENTINEL_PORTS[@]}"; do launch_sentinel "$p" "$FIRST_MASTER"; done
    wait_healthy || die "not healthy after ${TIMEOUT}s"
  fi
  log "up in $((SECONDS - t0))s: primary $(sentinel_master)"
}

cmd_stop() {
  local p
  # Sentinels first: they would otherwise fail over while the data nodes stop.
  for p in "${SENTINEL_PORTS[@]}"; do stop_server "$p"; done
  for p in "${DATA_PORTS[@]}"; do stop_server "$p"; done
  log "stopped"
}

cmd_status() {
  local p pid repl role detail reply
  printf '%-6s %-8s %-9s %s\n' port pid role detail
  for p in "${DATA_PORTS[@]}"; do
    pid=$(node_pid "$p")
    if repl=$(rcli "$p" INFO replication) && [[ -n $repl ]]; then
      role=$(info_field role <<<"$repl")
      if [[ $role == master ]]; then
        detail="connected_slaves=$(info_field connected_slaves <<<"$repl")"
      else
        detail="master=$(info_field master_port <<<"$repl") link=$(info_field master_link_status <<<"$repl")"
      fi
    else
      role=down detail=
    fi
    printf '%-6s %-8s %-9s %s\n' "$p" "${pid:--}" "$role" "$detail"
  done
  for p in "${SENTINEL_PORTS[@]}"; do
    pid=$(node_pid "$p")
    if reply=$(rcli "$p" SENTINEL master "$NAME") && [[ -n $reply ]]; then
      detail="get-master-addr-by-name=$(rcli "$p" SENTINEL get-master-addr-by-name "$NAME" | paste -sd:)"
      detail+=" flags=$(pair_field flags <<<"$reply") other-sentinels=$(pair_field num-other-sentinels <<<"$reply")"
      detail+=" replicas=$(pair_field num-slaves <<<"$reply")"
      role=sentinel
    else
      role=down detail=
    fi
    printf '%-6s %-8s %-9s %s\n' "$p" "${pid:--}" "$role" "$detail"
  done
}

cmd_kill() {
  local port=$1 pid
  check_port_arg "$port"
  pid=$(node_pid "$port")
  [[ -n $pid ]] || { log "$port is not running"; return 0; }
  kill -KILL "$pid"
  while pid_alive "$pid"; do sleep 0.05; done
  log "$port (pid $pid) killed with SIGKILL"
}

cmd_start_node() {
  local port=$1 t0=$SECONDS
  check_port_arg "$port"
  ensure_dir
  if ! answers "$port"; then
    if is_sentinel_port "$port"; then start_sentinel "$port"; else start_data_node "$port"; fi
  fi
  wait_healthy || die "not healthy after ${TIMEOUT}s"
  log "$port up in $((SECONDS - t0))s; primary $(sentinel_master)"
}

cmd_master() {
  sentinel_master || die "no sentinel answers"
}

cmd_reset() {
  cmd_stop
  if [[ -d $DIR ]]; then
    [[ -e $DIR/$MARKER ]] || die "$DIR was not made by this script; not deleting it"
    rm -rf -- "$DIR"
    log "deleted $DIR"
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
    master) cmd_master ;;
    reset) cmd_reset ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d' ;;
    *) die "unknown command '$cmd' (start|stop|status|kill PORT|start-node PORT|master|reset)" ;;
  esac
}

main "$@"
