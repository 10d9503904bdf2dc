#!/usr/bin/env bash
# bench/bus.sh — message-bus benchmark (issue 5): Tributary's bus against RabbitMQ and NATS
# JetStream, the same workload, in one run. `make bench` runs it after bench/security.sh.
#
# For each system it starts a fresh server on a private temporary directory and free loopback
# ports, runs bench/bus.mjs twice and stops the server:
#   throughput  1 KB messages over 1,000 sessions: producers send batches of 100 and wait for the
#               durable acknowledgement, consumers receive and settle in batches; settled msg/s.
#               Each system runs every producers×consumers setting of BENCH_BUS_GRID; its best one
#               is reported (the others are in the details), so no system is held back by a client
#               concurrency that suits another;
#   latency     a producer paced at 1,000 msg/s sending single messages, consumers long-polling;
#               p50/p99 send→receive.
# The systems, and what "durable" means for each:
#   tributary  build/tributary on a fresh data dir: SQLite in WAL mode with synchronous=FULL (the
#              store's default, src/storage/sqlite), group commit; a send is answered 201 and a
#              complete 200 only after the commit is fsync'd. A queue with requiresSession; the
#              HTTP data plane with the batch extensions (messages/head?maxMessages=,
#              messages/complete).
#   rabbitmq   Debian's rabbitmq-server, one quorum queue (it has no sessions: the session id is a
#              header), publisher confirms (a quorum queue confirms after its log is fsync'd),
#              manual acks (acks are not confirmed to the client).
#   nats       Debian's nats-server with JetStream, file storage, `sync_interval: always` where the
#              server knows the option (nats-server 2.10+). Debian 12 ships 2.9.10, which refuses
#              it: then the stream runs with the server's default, which does not fsync before the
#              PubAck, and the report says so. One stream on subjects orders.<session>, one durable
#              pull consumer with explicit acks.
# It prints a markdown table with the ratios and appends it to the newest report in bench/results
# written in the last 10 minutes (the rest of `make bench`), or a new bench/results/<date>.md.
#
# Environment variables (defaults in brackets):
#   BENCH_BUS_SYSTEMS ["tributary rabbitmq nats"]  systems to run (a missing server is skipped)
#   BENCH_BUS_DURATION [10]        measured seconds of each throughput run (after BENCH_BUS_WARMUP [3])
#   BENCH_BUS_LATENCY_DURATION [15]  measured seconds of the latency run (after 2 s)
#   BENCH_BUS_SESSIONS [1000], BENCH_BUS_SIZE [1024]
#   BENCH_BUS_GRID ["4x32 8x8 8x32"]  producers×consumers settings of the throughput runs
#   BENCH_BUS_BATCH [100], BENCH_BUS_RECEIVE_BATCH [100]  send batch; receive/settle batch per consumer
#   BENCH_BUS_LATENCY_CONSUMERS [64]  consumers of the latency run (a Tributary consumer holds one
#                                  session from accept to release, about 4 round trips)
#   BENCH_BUS_BACKLOG [40000]      producers pause while more messages than this are unsettled
#   BENCH_BUS_RATE [1000]          msg/s of the latency run
#   BENCH_BUS_BROKER [1]           0 = skip build/bench/bench_bus_broker (the in-process ceiling)
#   BENCH_RESULTS_FILE, BENCH_RESULTS_DIR [bench/results], BENCH_TMPDIR [/tmp] (not tmpfs)
#   TRIBUTARY_BIN [build/tributary], BENCH_BUS_BROKER_BIN [build/bench/bench_bus_broker]
#   BENCH_CLIENT_ID / BENCH_CLIENT_SECRET   bootstrap app-user credentials (fixed defaults)
#
# About 3 minutes with the defaults; every step has a time limit, so the whole script stays under
# 6 minutes. Servers are always stopped on exit (trap), including on Ctrl-C.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"

BIN=${TRIBUTARY_BIN:-$ROOT/build/tributary}
SYSTEMS=${BENCH_BUS_SYSTEMS:-tributary rabbitmq nats}
DURATION=${BENCH_BUS_DURATION:-10}
WARMUP=${BENCH_BUS_WARMUP:-3}
LAT_DURATION=${BENCH_BUS_LATENCY_DURATION:-15}
LAT_WARMUP=2
SESSIONS=${BENCH_BUS_SESSIONS:-1000}
SIZE=${BENCH_BUS_SIZE:-1024}
GRID=${BENCH_BUS_GRID:-4x32 8x8 8x32}
BATCH=${BENCH_BUS_BATCH:-100}
LAT_CONSUMERS=${BENCH_BUS_LATENCY_CONSUMERS:-64}
RECEIVE_BATCH=${BENCH_BUS_RECEIVE_BATCH:-100}
BACKLOG=${BENCH_BUS_BACKLOG:-40000}
RATE=${BENCH_BUS_RATE:-1000}
BROKER_BENCH=${BENCH_BUS_BROKER:-1}
BROKER_BIN=${BENCH_BUS_BROKER_BIN:-$ROOT/build/bench/bench_bus_broker}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$BENCH_DIR/results}
RESULTS_FILE=${BENCH_RESULTS_FILE:-}
TMP_PARENT=${BENCH_TMPDIR:-/tmp}
export BENCH_CLIENT_ID=${BENCH_CLIENT_ID:-7c0e5a52-3f1d-4b8e-9a61-2d4c6e8f0a13}
export BENCH_CLIENT_SECRET=${BENCH_CLIENT_SECRET:-tributary-bench-secret-5f2b9c1e7d}

RABBITMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
PEER_READY_TIMEOUT=60  # seconds RabbitMQ / NATS may take to start

# log, die, put, start_server, stop_server, get_token, free_port, run_child, ...: see lib.sh
source "$BENCH_DIR/lib.sh"

if [[ -z $RESULTS_FILE ]]; then
  RESULTS_FILE=$(find "$RESULTS_DIR" -maxdepth 1 -name '*.md' -mmin -10 -printf '%T@ %p\n' 2>/dev/null |
    sort -n | tail -n 1 | cut -d' ' -f2-) || RESULTS_FILE=""
fi

bench_workdir bus

# --- The peers: started in their own process group, stopped by it -----------------------------

RABBIT_PGID=""
EPMD_PID=""
NATS_PID=""

# stop_group PGID NAME: SIGTERM to the process group, SIGKILL after 20 s.
stop_group() {
  local pgid=$1 i
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for (( i = 0; i < 200; i++ )); do
    kill -0 -- "-$pgid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 -- "-$pgid" 2>/dev/null; then
    log "$2 did not stop within 20 s of SIGTERM; killing it"
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  wait "$pgid" 2>/dev/null || true
}

stop_peers() {
  if [[ -n $RABBIT_PGID ]]; then stop_group "$RABBIT_PGID" rabbitmq; RABBIT_PGID=""; fi
  if [[ -n $EPMD_PID ]]; then kill "$EPMD_PID" 2>/dev/null || true; wait "$EPMD_PID" 2>/dev/null || true; EPMD_PID=""; fi
  if [[ -n $NATS_PID ]]; then stop_group "$NATS_PID" nats; NATS_PID=""; fi
}

bus_cleanup() {
  local rc=$?
  stop_peers
  (exit "$rc")
  cleanup  # lib.sh: stops the Tributary server, removes WORK, exits with rc
}
trap bus_cleanup EXIT

# wait_for_line FILE PATTERN TIMEOUT_S PID: true once FILE has a line matching PATTERN; false if
# PID exits or the time runs out.
wait_for_line() {
  local file=$1 pattern=$2 deadline=$(( SECONDS + $3 )) pid=$4
  while (( SECONDS < deadline )); do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

start_rabbitmq() {
  local dir="$WORK/rabbitmq" port dist epmd_port
  mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
  port=$(free_port)
  dist=$(free_port)
  epmd_port=$(free_port)
  printf '[].\n' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "$port" >"$dir/rabbitmq.conf"
  # A private epmd on its own port, so that no daemon outlives the run.
  epmd -port "$epmd_port" >"$dir/epmd.log" 2>&1 &
  EPMD_PID=$!
  HOME="$dir/home" ERL_EPMD_PORT=$epmd_port RABBITMQ_NODENAME=tributary-bench@localhost \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$dist \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_LOGS=- \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
    RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" RABBITMQ_PID_FILE="$dir/pid" \
    setsid "$RABBITMQ_SERVER" >"$dir/server.log" 2>&1 </dev/null &
  RABBIT_PGID=$!
  if ! wait_for_line "$dir/server.log" 'Server startup complete' "$PEER_READY_TIMEOUT" "$RABBIT_PGID"; then
    log "rabbitmq did not start; last lines of its log:"
    tail -n 20 "$dir/server.log" >&2 || true
    return 1
  fi
  PEER_URL="amqp://guest:guest@127.0.0.1:$port"
  PEER_PID=$(pgrep -g "$RABBIT_PGID" -x beam.smp | head -n 1 || true)
}

start_nats() {
  local dir="$WORK/nats" port
  mkdir -p "$dir/js"
  port=$(free_port)
  NATS_SYNC=always
  printf 'listen: 127.0.0.1:%s\njetstream {\n  store_dir: "%s"\n  sync_interval: always\n}\n' \
    "$port" "$dir/js" >"$dir/nats.conf"
  if ! nats-server -c "$dir/nats.conf" -t >"$dir/check.log" 2>&1 && grep -q 'sync_interval' "$dir/check.log"; then
    log "nats-server $(nats-server --version 2>/dev/null | sed 's/.* v//') has no sync_interval: JetStream runs with its default (no fsync per publish)"
    NATS_SYNC=default
    sed -i '/sync_interval/d' "$dir/nats.conf"
  fi
  setsid nats-server -c "$dir/nats.conf" >"$dir/server.log" 2>&1 </dev/null &
  NATS_PID=$!
  if ! wait_for_line "$dir/server.log" 'Server is ready' "$PEER_READY_TIMEOUT" "$NATS_PID"; then
    log "nats-server did not start; last lines of its log:"
    tail -n 20 "$dir/server.log" >&2 || true
    return 1
  fi
  PEER_URL="nats://127.0.0.1:$port"
  PEER_PID=$NATS_PID
}

# --- Runs ---------------------------------------------------------------------------------------

# bus_once SYSTEM MODE URL PID PRODUCERS CONSUMERS KEY: one bus.mjs run; its summary goes to
# $RESULTS as KEY_<name>; prints the settled rate (0 when the run failed).
bus_once() {
  local system=$1 mode=$2 url=$3 pid=$4 producers=$5 consumers=$6 key=$7 duration warmup summary kv
  local out="$WORK/$key.out"
  if [[ $mode == throughput ]]; then duration=$DURATION warmup=$WARMUP; else duration=$LAT_DURATION warmup=$LAT_WARMUP; fi
  log "$system $mode, $producers producers, $consumers consumers: ${duration}s after ${warmup}s"
  run_child timeout $(( duration + warmup + 60 )) node "$BENCH_DIR/bus.mjs" --system "$system" --mode "$mode" \
    --url "$url" --server-pid "${pid:-0}" --duration "$duration" --warmup "$warmup" --sessions "$SESSIONS" \
    --size "$SIZE" --producers "$producers" --batch "$BATCH" --consumers "$consumers" \
    --receive-batch "$RECEIVE_BATCH" --backlog "$BACKLOG" --rate "$RATE" \
    >"$out" 2> >(tee -a "$WORK/bus.log" >&2) || true
  summary=$(tail -n 1 "$out")
  if [[ $summary != system=* ]]; then
    log "$system $mode: bus.mjs produced no result"
    put "${key}_errors" 1
    echo 0
    return 0
  fi
  printf '%s producers=%s consumers=%s\n' "$summary" "$producers" "$consumers" >>"$WORK/bus.log"
  log "    $summary"
  for kv in $summary; do put "${key}_${kv%%=*}" "${kv#*=}"; done
  put "${key}_producers" "$producers"
  put "${key}_consumers" "$consumers"
  kv=${summary##* rate=}
  echo "${kv%% *}"
}

# run_bus SYSTEM URL PID: the throughput grid (the best run becomes SYSTEM_throughput_*), then the
# latency run (SYSTEM_latency_*).
run_bus() {
  local system=$1 url=$2 pid=$3 cfg p c rate best=-1 best_key="" kv
  for cfg in $GRID; do
    p=${cfg%x*} c=${cfg#*x}
    rate=$(bus_once "$system" throughput "$url" "$pid" "$p" "$c" "${system}_tp${p}x${c}")
    if (( rate > best )); then best=$rate best_key="${system}_tp${p}x${c}"; fi
  done
  # The best run's figures under SYSTEM_throughput_ (results.env: the last value of a key wins).
  grep "^${best_key}_" "$RESULTS" | sed "s/^${best_key}_/${system}_throughput_/" >>"$RESULTS.best" || true
  cat "$RESULTS.best" >>"$RESULTS" 2>/dev/null || true
  rm -f "$RESULTS.best"
  bus_once "$system" latency "$url" "$pid" 1 "$LAT_CONSUMERS" "${system}_latency" >/dev/null
}

run_tributary() {
  if [[ ! -x $BIN ]]; then put tributary_skipped "$BIN not built"; return 0; fi
  mkdir -p "$WORK/data"
  if ! start_server "$WORK/data" "$WORK/server.log" 60; then put tributary_skipped "the server did not start"; return 0; fi
  local token
  if ! token=$(get_token); then put tributary_skipped "no token"; stop_server; return 0; fi
  export BENCH_TOKEN=$token
  run_bus tributary "$URL" "$SERVER_PID"
  put tributary_peak_rss_kb "$(proc_kb "$SERVER_PID" VmHWM)"
  stop_server
}

run_rabbitmq() {
  if [[ ! -x $RABBITMQ_SERVER ]] || ! command -v epmd >/dev/null; then
    put rabbitmq_skipped "rabbitmq-server not installed (make bench-deps)"
    return 0
  fi
  put rabbitmq_version "$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null | sed 's/-.*//')"
  log "starting rabbitmq-server"
  if ! start_rabbitmq; then put rabbitmq_skipped "the server did not start"; stop_peers; return 0; fi
  run_bus rabbitmq "$PEER_URL" "$PEER_PID"
  put rabbitmq_peak_rss_kb "$(proc_kb "$PEER_PID" VmHWM)"
  stop_peers
}

run_nats() {
  if ! command -v nats-server >/dev/null; then put nats_skipped "nats-server not installed (make bench-deps)"; return 0; fi
  put nats_version "$(nats-server --version 2>/dev/null | sed 's/.* v//')"
  log "starting nats-server"
  if ! start_nats; then put nats_skipped "the server did not start"; stop_peers; return 0; fi
  put nats_sync "$NATS_SYNC"
  run_bus nats "$PEER_URL" "$PEER_PID"
  put nats_peak_rss_kb "$(proc_kb "$PEER_PID" VmHWM)"
  stop_peers
}

put_machine
if [[ $FSTYPE == tmpfs ]]; then
  log "warning: $TMP_PARENT is tmpfs; fsync costs nothing there, the figures are not durable-write figures"
fi
for k in SESSIONS SIZE GRID BATCH LAT_CONSUMERS RECEIVE_BATCH BACKLOG RATE DURATION WARMUP; do
  put "${k,,}" "${!k}"
done
put latency_duration "$LAT_DURATION"
[[ -d $ROOT/node_modules/amqplib && -d $ROOT/node_modules/nats ]] ||
  log "warning: node_modules lacks amqplib or nats (npm ci): the RabbitMQ / NATS runs will fail"

for system in $SYSTEMS; do
  case $system in
    tributary) run_tributary ;;
    rabbitmq) run_rabbitmq ;;
    nats) run_nats ;;
    *) die "unknown system '$system' in BENCH_BUS_SYSTEMS" ;;
  esac
done

# The broker's own ceiling, in process (bench/bus_broker.cpp).
if [[ $BROKER_BENCH == 1 ]]; then
  if [[ ! -x $BROKER_BIN && -f $ROOT/build/CMakeCache.txt ]]; then
    log "building bench_bus_broker"
    run_child timeout 600 cmake --build "$ROOT/build" --target bench_bus_broker >"$WORK/build.log" 2>&1 ||
      tail -n 20 "$WORK/build.log" >&2
  fi
  if [[ -x $BROKER_BIN ]]; then
    log "running $BROKER_BIN"
    sync
    BENCH_TMPDIR=$TMP_PARENT run_child timeout 180 "$BROKER_BIN" --benchmark_min_time=1 >"$WORK/broker.txt" 2>&1 ||
      log "bench_bus_broker failed"
    grep '^BM_' "$WORK/broker.txt" | sed 's/^/    /' >&2 || true
  fi
fi

node "$BENCH_DIR/bus.mjs" --report "$WORK" >"$WORK/report.md"
cat "$WORK/report.md"
if [[ -z $RESULTS_FILE ]]; then
  mkdir -p "$RESULTS_DIR"
  RESULTS_FILE="$RESULTS_DIR/$(date +%Y-%m-%d).md"
  [[ -e $RESULTS_FILE ]] && RESULTS_FILE="$RESULTS_DIR/$(date +%Y-%m-%d-%H%M%S).md"
fi
{
  printf '\n'
  cat "$WORK/report.md"
  printf '<details><summary>bus.sh details</summary>\n\n```\n'
  cat "$WORK/bus.log" 2>/dev/null || true
  grep -E '^(tributary|rabbitmq|nats)_(peak_rss_kb|sync|version)=' "$RESULTS" || true
  [[ -f $WORK/broker.txt ]] && { printf -- '--- bench_bus_broker\n'; grep -E '^(BM_|Run on|CPU|Load)' "$WORK/broker.txt"; }
  printf '```\n\n</details>\n'
} >>"$RESULTS_FILE"
log "results appended to ${RESULTS_FILE#"$ROOT"/}"
