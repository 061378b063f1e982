#!/usr/bin/env bash
# scripts/clusters/redis-cluster.sh - a throwaway 6-node Redis Cluster on one machine.
#
# Why it exists: the cluster suites and benches of issue 22 need a real Redis
# Cluster (keys spread over slots, MOVED redirections, a master dying and its
# replica taking over) without extra machines, and on ports apart from the
# single Redis on 6379 so that both can run at once.
#
# Usage:
#   scripts/clusters/redis-cluster.sh [start]         6 nodes up, cluster_state:ok, replicas in sync (idempotent)
#   scripts/clusters/redis-cluster.sh stop            shut every node down
#   scripts/clusters/redis-cluster.sh status          role, state and slots of each node
#   scripts/clusters/redis-cluster.sh kill PORT       kill -9 one node (7001..7006, or its own six ports)
#   scripts/clusters/redis-cluster.sh start-node PORT restart one node and wait until the cluster is ok
#   scripts/clusters/redis-cluster.sh masters         ports currently master, one per line
#   scripts/clusters/redis-cluster.sh reset           stop, then delete all state
#
# Nodes: 127.0.0.1:7001-7006 (cluster bus 17001-17006), 3 masters and 3
# replicas, no password, no persistence (a restarted node comes back empty and
# resyncs; its identity and role survive in nodes.conf).
#
# Environment: REDIS_CLUSTER_PORT (first of six consecutive ports, default 7001: a suite that
#                kills nodes runs its own cluster so that suites running beside it never see it),
#              REDIS_CLUSTER_DIR (state, default /var/tmp/idempotency-redis-cluster, suffixed
#                with the first port when that is not 7001),
#              REDIS_CLUSTER_TIMEOUT (seconds to wait for ok, default 60).
set -euo pipefail

FIRST_PORT=${REDIS_CLUSTER_PORT:-7001}
[[ $FIRST_PORT =~ ^[0-9]+$ ]] && ((FIRST_PORT >= 1024 && FIRST_PORT <= 55000)) \
  || { echo "REDIS_CLUSTER_PORT must be a port in 1024-55000 (its bus is port + 10000), got '$FIRST_PORT'" >&2; exit 1; }
if ((FIRST_PORT == 7001)); then DEFAULT_DIR=/var/tmp/idempotency-redis-cluster; else DEFAULT_DIR=/var/tmp/idempotency-redis-cluster-$FIRST_PORT; fi
DIR=${REDIS_CLUSTER_DIR:-$DEFAULT_DIR}
TIMEOUT=${REDIS_CLUSTER_TIMEOUT:-60}
PORTS=()
for ((i = 0; i < 6; i++)); do PORTS+=($((FIRST_PORT + i))); done
NODE_TIMEOUT_MS=2000
# Written into the state dir so that `reset` never deletes a directory it did not create.
MARKER=.idempotency-redis-cluster

log() { printf '[redis-cluster %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

check_port_arg() {
  local p
  for p in "${PORTS[@]}"; do [[ ${1:-} == "$p" ]] && return 0; done
  die "expected a port among ${PORTS[*]}, got '${1:-}'"
}

# redis-cli against one node; `timeout` because a wedged node would block forever.
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

# A field of CLUSTER INFO / INFO output (lines "name:value\r").
info_field() { tr -d '\r' | sed -n "s/^$1://p"; }

# --- processes -------------------------------------------------------------------

# The pid of the redis-server on PORT, from its pid file, checked against the
# process title (redis-server 127.0.0.1:PORT [cluster]) so that a stale pid
# file never designates another process.
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
    die "$DIR exists and was not made by this script; set REDIS_CLUSTER_DIR elsewhere"
  fi
  mkdir -p "$DIR"
  touch "$DIR/$MARKER"
}

# cluster-replica-validity-factor 0: a replica always takes over from a dead
# master, however long it was itself disconnected; with the default (10) a
# replica that had just been restarted or resynced could refuse and leave its
# slots uncovered. repl-diskless-sync-delay 0: by default a master waits 5 s
# for more replicas before a full sync, which a rejoining node would pay every
# time. Nothing is persisted: these are test data.
launch_node() {
  local port=$1
  mkdir -p "$DIR/$port"
  redis-server --port "$port" --bind 127.0.0.1 \
    --cluster-enabled yes --cluster-config-file "$DIR/$port/nodes.conf" \
    --cluster-node-timeout "$NODE_TIMEOUT_MS" --cluster-replica-validity-factor 0 \
    --save "" --appendonly no --repl-diskless-sync-delay 0 \
    --daemonize yes --dir "$DIR/$port" --logfile "$DIR/$port/log" --pidfile "$DIR/$port/redis.pid"
  local deadline=$((SECONDS + 10))
  until answers "$port"; do
    ((SECONDS < deadline)) || { tail -n 20 "$DIR/$port/log" >&2; die "node $port does not answer"; }
    sleep 0.1
  done
}

stop_node() {
  local port=$1 pid deadline
  pid=$(node_pid "$port")
  [[ -n $pid ]] || return 0
  rcli "$port" SHUTDOWN NOSAVE >/dev/null || kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 15))
  while pid_alive "$pid"; do
    ((SECONDS < deadline)) || { kill -KILL "$pid" 2>/dev/null || true; }
    sleep 0.1
  done
}

# --- cluster view ----------------------------------------------------------------

# Some node that answers, to ask about the cluster.
any_live_port() {
  local p
  for p in "${PORTS[@]}"; do answers "$p" && { echo "$p"; return 0; }; done
  return 1
}

# The node id of PORT, from its own nodes.conf (known even while it is down).
node_id_of() {
  awk '/myself/ {print $1; exit}' "$DIR/$1/nodes.conf" 2>/dev/null
}

# Ports of the healthy masters that serve slots, as a live node sees them.
masters() {
  local live
  live=$(any_live_port) || return 0
  rcli "$live" CLUSTER NODES | awk '
    $3 ~ /master/ && $3 !~ /fail/ && NF > 8 { split($2, a, "[:@]"); print a[2] }' | sort -n
}

# A replica counts as ready once its link to the master is up: before that a
# failover test would promote a replica without the data.
replica_ready() {
  local repl
  repl=$(rcli "$1" INFO replication) || return 1
  [[ $(info_field role <<<"$repl") == master || $(info_field master_link_status <<<"$repl") == up ]]
}

# Every node answers, agrees the cluster is ok, knows all six nodes, and every
# master serving slots has a replica (3 + 3) that is in sync.
cluster_healthy() {
  local p info
  for p in "${PORTS[@]}"; do
    info=$(rcli "$p" CLUSTER INFO) || return 1
    [[ $(info_field cluster_state <<<"$info") == ok &&
       $(info_field cluster_slots_ok <<<"$info") == 16384 &&
       $(info_field cluster_known_nodes <<<"$info") == "${#PORTS[@]}" ]] || return 1
    replica_ready "$p" || return 1
  done
  rcli "${PORTS[0]}" CLUSTER NODES | awk -v want=$((${#PORTS[@]} / 2)) '
    $3 !~ /fail/ && $3 ~ /master/ && NF > 8 { m++ }
    $3 !~ /fail/ && $3 ~ /slave/ { r++ }
    END { exit !(m == want && r == want) }'
}

wait_healthy() {
  local deadline=$((SECONDS + TIMEOUT))
  until cluster_healthy; do
    if ((SECONDS >= deadline)); then
      diagnose
      return 1
    fi
    sleep 0.2
  done
}

diagnose() {
  local p live
  for p in "${PORTS[@]}"; do
    log "--- $p: pid=$(node_pid "$p") state=$(rcli "$p" CLUSTER INFO | info_field cluster_state) link=$(rcli "$p" INFO replication | info_field master_link_status)"
    tail -n 5 "$DIR/$p/log" 2>/dev/null >&2 || true
  done
  live=$(any_live_port) && rcli "$live" CLUSTER NODES >&2 || true
}

# A cluster was never formed when no node knows about any slot.
cluster_formed() {
  local p assigned
  for p in "${PORTS[@]}"; do
    assigned=$(rcli "$p" CLUSTER INFO | info_field cluster_slots_assigned)
    [[ ${assigned:-0} -gt 0 ]] && return 0
  done
  return 1
}

create_cluster() {
  local addrs=() p
  for p in "${PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
  log "creating the cluster"
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$DIR/create.log" 2>&1 \
    || { cat "$DIR/create.log" >&2; die "redis-cli --cluster create failed"; }
}

# Nothing is persisted, so a master restarted before its replica took over
# would come back empty yet still own its slots, and its replica would then
# copy the empty data set. Wait (bounded) for the failover first, so that the
# old master rejoins as a replica.
wait_for_failover_of() {
  local port=$1 id live nodes deadline=$((SECONDS + 3 * NODE_TIMEOUT_MS / 1000 + 10))
  id=$(node_id_of "$port")
  [[ -n $id ]] || return 0
  while live=$(any_live_port); do
    nodes=$(rcli "$live" CLUSTER NODES)
    # Replaced already, or never a master with slots?
    awk -v id="$id" '$1 == id && $3 ~ /master/ && NF > 8 {f=1} END {exit !f}' <<<"$nodes" || return 0
    # No replica of it answers: nobody can take over, so waiting is pointless.
    if ! any_answers $(awk -v id="$id" '$4 == id {split($2, a, "[:@]"); print a[2]}' <<<"$nodes"); then
      log "$port has no live replica; restarting it as master (its data are lost)"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      log "no replica took over from $port; restarting it as master (its data are lost)"
      return 0
    fi
    sleep 0.2
  done
}

# --- subcommands -----------------------------------------------------------------

cmd_start() {
  local t0=$SECONDS p stopped=()
  if cluster_healthy; then
    log "already running: ${#PORTS[@]} nodes, cluster_state:ok"
    return 0
  fi
  ensure_dir
  for p in "${PORTS[@]}"; do answers "$p" || stopped+=("$p"); done
  if ((${#stopped[@]} < ${#PORTS[@]})); then
    for p in "${stopped[@]}"; do wait_for_failover_of "$p"; done
  fi
  for p in "${stopped[@]}"; do
    log "starting node $p"
    launch_node "$p"
  done
  cluster_formed || create_cluster
  if ! wait_healthy; then
    log "the cluster does not recover; recreating it from scratch"
    cmd_reset
    ensure_dir
    for p in "${PORTS[@]}"; do launch_node "$p"; done
    create_cluster
    wait_healthy || die "cluster not ok after ${TIMEOUT}s"
  fi
  log "cluster up in $((SECONDS - t0))s: masters $(masters | paste -sd ' ')"
}

cmd_stop() {
  local p
  for p in "${PORTS[@]}"; do stop_node "$p"; done
  log "stopped"
}

cmd_status() {
  local p pid role state slots myself
  printf '%-6s %-8s %-8s %-7s %s\n' port pid role state slots
  for p in "${PORTS[@]}"; do
    pid=$(node_pid "$p")
    if answers "$p"; then
      myself=$(rcli "$p" CLUSTER NODES | awk '/myself/')
      role=$(awk '{print ($3 ~ /master/) ? "master" : "replica"}' <<<"$myself")
      slots=$(awk '{s=""; for (i = 9; i <= NF; i++) s = s $i " "; print s}' <<<"$myself")
      state=$(rcli "$p" CLUSTER INFO | info_field cluster_state)
    else
      role=- state=down slots=
    fi
    printf '%-6s %-8s %-8s %-7s %s\n' "$p" "${pid:--}" "$role" "$state" "${slots:--}"
  done
}

cmd_kill() {
  local port=$1 pid
  check_port_arg "$port"
  pid=$(node_pid "$port")
  [[ -n $pid ]] || { log "node $port is not running"; return 0; }
  kill -KILL "$pid"
  while pid_alive "$pid"; do sleep 0.05; done
  log "node $port (pid $pid) killed with SIGKILL"
}

cmd_start_node() {
  local port=$1 t0=$SECONDS
  check_port_arg "$port"
  ensure_dir
  if ! answers "$port"; then
    wait_for_failover_of "$port"
    launch_node "$port"
  fi
  cluster_formed || die "no cluster formed yet; run start"
  wait_healthy || die "cluster not ok after ${TIMEOUT}s"
  log "node $port up as $(rcli "$port" INFO replication | info_field role) in $((SECONDS - t0))s"
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
    masters) masters ;;
    reset) cmd_reset ;;
    -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d' ;;
    *) die "unknown command '$cmd' (start|stop|status|kill PORT|start-node PORT|masters|reset)" ;;
  esac
}

main "$@"
