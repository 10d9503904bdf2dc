#!/usr/bin/env bash
# bench/webapi.sh — end-to-end Web API benchmark for Tributary, with the raw-SQLite ceiling.
#
# Starts build/tributary on a temporary data dir, seeds accounts through the Web API, drives it
# with wrk (GET by id, filtered query, POST create), records memory and cold-start time, runs
# build/bench/bench_raw_sqlite, and prints a markdown table that is also written to
# bench/results/<date>.md. See bench/README.md for what every figure means.
#
# Everything is configured through environment variables (defaults in brackets):
#   BENCH_DURATION [10s]          wrk duration of each measured run
#   BENCH_WARMUP [2s]             unmeasured wrk run before each measured one (0 = none)
#   BENCH_CONNECTIONS [64]        wrk connections
#   BENCH_THREADS [2]             wrk threads
#   BENCH_SEED [20000]            accounts seeded before the wrk runs
#   BENCH_SEED_CONCURRENCY [32]   requests in flight while seeding
#   BENCH_SEED_TIMEOUT [45]       seconds after which seeding stops (the run goes on with what it has)
#   BENCH_SEED_MODE [auto]        auto | single | multiple (CreateMultiple); see seed.mjs
#   BENCH_FULL [0]                1 = cold start with 1,000,000 accounts and no seeding time cap
#   BENCH_COLD [1]                0 = skip the cold-start measurement
#   BENCH_COLD_ACCOUNTS [100000]  store size for cold start (1000000 with BENCH_FULL=1)
#   BENCH_COLD_SEED_TIMEOUT [75]  seconds spent growing the cold-start store per run (0 = no cap;
#                                 default 0 with BENCH_FULL=1). A capped store is resumed next run.
#   BENCH_COLD_RUNS [3]           server starts timed; the median is reported
#   BENCH_CACHE [1]               keep the cold-start store in BENCH_CACHE_DIR and reuse it
#   BENCH_CACHE_DIR [bench/.cache]
#   BENCH_REBUILD_CACHE [0]       1 = throw the cached store away and build it again
#   BENCH_DROP_CACHES [0]         1 = sync and drop the OS page cache before each cold start (root)
#   BENCH_RAW [1]                 0 = skip bench_raw_sqlite
#   BENCH_RAW_MIN_TIME [0.5]      --benchmark_min_time for bench_raw_sqlite
#   BENCH_RESULTS_DIR [bench/results]
#   BENCH_TMPDIR [/tmp]           parent of the temporary data dir (must not be tmpfs for fsync)
#   TRIBUTARY_BIN [build/tributary], BENCH_RAW_BIN [build/bench/bench_raw_sqlite]
#   BENCH_CLIENT_ID / BENCH_CLIENT_SECRET   bootstrap app-user credentials (fixed defaults)
#
# Default run time: about 1 minute with a fast server; capped at roughly 3 minutes by the seeding
# time limits above. The server is always stopped on exit (trap), including on Ctrl-C.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"

BIN=${TRIBUTARY_BIN:-$ROOT/build/tributary}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
SEED_N=${BENCH_SEED:-20000}
SEED_CONC=${BENCH_SEED_CONCURRENCY:-32}
SEED_TIMEOUT=${BENCH_SEED_TIMEOUT:-45}
SEED_MODE=${BENCH_SEED_MODE:-auto}
FULL=${BENCH_FULL:-0}
if [[ $FULL == 1 ]]; then
  COLD_M=${BENCH_COLD_ACCOUNTS:-1000000}
  COLD_SEED_TIMEOUT=${BENCH_COLD_SEED_TIMEOUT:-0}
else
  COLD_M=${BENCH_COLD_ACCOUNTS:-100000}
  COLD_SEED_TIMEOUT=${BENCH_COLD_SEED_TIMEOUT:-75}
fi
COLD=${BENCH_COLD:-1}
COLD_RUNS=${BENCH_COLD_RUNS:-3}
CACHE=${BENCH_CACHE:-1}
CACHE_DIR=${BENCH_CACHE_DIR:-$BENCH_DIR/.cache}
REBUILD_CACHE=${BENCH_REBUILD_CACHE:-0}
DROP_CACHES=${BENCH_DROP_CACHES:-0}
RAW=${BENCH_RAW:-1}
RAW_MIN_TIME=${BENCH_RAW_MIN_TIME:-0.5}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$BENCH_DIR/results}
TMP_PARENT=${BENCH_TMPDIR:-/tmp}
export BENCH_CLIENT_ID=${BENCH_CLIENT_ID:-7c0e5a52-3f1d-4b8e-9a61-2d4c6e8f0a13}
export BENCH_CLIENT_SECRET=${BENCH_CLIENT_SECRET:-tributary-bench-secret-5f2b9c1e7d}

START_READY_TIMEOUT=60    # seconds a fresh server may take to print "listening on"
COLD_READY_TIMEOUT=300    # the same for a server opening the big cold-start store

# log, die, to_seconds, put, start_server, stop_server, get_token, run_wrk, ...: see lib.sh
source "$BENCH_DIR/lib.sh"
DUR_S=$(to_seconds "$DURATION")
if [[ $WARMUP == 0 || $WARMUP == 0s ]]; then WARMUP=""; fi

# ----------------------------------------------------------------------------------------------
# Working dir, results and cleanup (bench/lib.sh)
# ----------------------------------------------------------------------------------------------

bench_workdir webapi

# seed ARGS... : runs seed.mjs and stores its summary in SEED_<key> variables.
seed() {
  local rc=0 kv
  run_child timeout $(( ${SEED_CAP:-0} > 0 ? SEED_CAP + 60 : 86400 )) \
    node "$BENCH_DIR/seed.mjs" --base "$URL" --concurrency "$SEED_CONC" --mode "$SEED_MODE" \
    --max-seconds "${SEED_CAP:-0}" "$@" >"$WORK/seed.out" || rc=$?
  SEED_created=0 SEED_errors=0 SEED_seconds=0 SEED_rate=0 SEED_mode=none
  for kv in $(tail -n 1 "$WORK/seed.out"); do
    case ${kv%%=*} in
      created | errors | seconds | rate | mode) printf -v "SEED_${kv%%=*}" '%s' "${kv#*=}" ;;
    esac
  done
  return "$rc"
}

# ----------------------------------------------------------------------------------------------
# Environment
# ----------------------------------------------------------------------------------------------

put_machine
put duration "$DURATION"
put warmup "${WARMUP:-none}"
put connections "$CONNECTIONS"
put threads "$THREADS"
if [[ $FSTYPE == tmpfs ]]; then
  log "warning: $TMP_PARENT is tmpfs; fsync costs nothing there, POST figures are not durable-write figures"
fi

missing=()
for tool in wrk curl node; do command -v "$tool" >/dev/null || missing+=("$tool"); done
HAVE_SERVER=1
if [[ ! -x $BIN ]]; then
  log "$BIN not found: skipping the Web API runs (build it first); only the raw SQLite ceiling runs"
  HAVE_SERVER=0
elif (( ${#missing[@]} )); then
  log "missing tools: ${missing[*]}: skipping the Web API runs"
  HAVE_SERVER=0
fi
put server "$HAVE_SERVER"

# ----------------------------------------------------------------------------------------------
# Web API throughput and memory
# ----------------------------------------------------------------------------------------------

run_webapi() {
  local DATA="$WORK/data" code
  mkdir -p "$DATA"
  log "starting $BIN on $DATA"
  if ! start_server "$DATA" "$WORK/server.log" "$START_READY_TIMEOUT"; then
    put server_error "the server did not start (see the log above)"
    return 1
  fi
  put start_ms "$(( READY_US / 1000 ))"
  log "listening on $URL after $(( READY_US / 1000 )) ms (pid $SERVER_PID)"
  sleep 1
  put idle_rss_kb "$(proc_kb "$SERVER_PID" VmRSS)"

  if ! TOKEN=$(get_token); then
    put server_error "no token from POST /oauth2/v2.0/token"
    return 1
  fi
  export BENCH_TOKEN=$TOKEN
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $TOKEN" \
    "$URL/api/data/v9.2/accounts?\$top=1") || code=000
  [[ $code == 200 ]] || log "warning: GET accounts?\$top=1 with the token answered $code"

  local IDS="$WORK/ids.txt" NUMS="$WORK/numbers.txt"
  log "seeding $SEED_N accounts ($SEED_CONC in flight, cap ${SEED_TIMEOUT}s)"
  SEED_CAP=$SEED_TIMEOUT seed --count "$SEED_N" --ids-out "$IDS" --numbers-out "$NUMS" ||
    log "warning: seeding reported errors"
  log "seeded $SEED_created accounts in ${SEED_seconds}s (${SEED_rate}/s, mode $SEED_mode, $SEED_errors errors)"
  put seed_target "$SEED_N"
  put seed_created "$SEED_created"
  put seed_errors "$SEED_errors"
  put seed_seconds "$SEED_seconds"
  put seed_rate "$SEED_rate"
  put seed_mode "$SEED_mode"
  if [[ ! -s $IDS || ! -s $NUMS ]]; then
    put server_error "seeding created no account"
    return 1
  fi

  export BENCH_IDS_FILE=$IDS BENCH_NUMBERS_FILE=$NUMS BENCH_RUN_ID=$$
  # Reads first, so the POST run does not change the data they see.
  run_wrk get "$BENCH_DIR/get_by_id.lua" "/api/data/v9.2/accounts"
  run_wrk query "$BENCH_DIR/query.lua" "/api/data/v9.2/accounts"
  run_wrk create "$BENCH_DIR/create.lua" "/api/data/v9.2/accounts"

  put peak_rss_kb "$(proc_kb "$SERVER_PID" VmHWM)"
  put loaded_rss_kb "$(proc_kb "$SERVER_PID" VmRSS)"
  code=$(curl -s -o "$WORK/metrics.txt" -w '%{http_code}' --max-time 5 "$URL/metrics") || code=000
  if [[ $code == 200 ]]; then put metrics 1; else rm -f "$WORK/metrics.txt"; put metrics 0; fi
  stop_server
  log "server stopped"
}

# Cold start: time from launching the server until "listening on" with a store of COLD_M accounts.
# The store is built through the Web API (seed.mjs) and kept in BENCH_CACHE_DIR/store-M, so it is
# built once and only grown or reused afterwards. A cached store that this build cannot open is
# thrown away and rebuilt (once).
STORE=""
STORE_HAVE=0

# build_store: makes sure STORE holds COLD_M accounts (or as many as the time cap allowed).
build_store() {
  mkdir -p "$STORE/data"
  STORE_HAVE=$(( $(cat "$STORE/ids.txt" 2>/dev/null | wc -l) ))
  (( STORE_HAVE >= COLD_M )) && return 0
  if ! start_server "$STORE/data" "$WORK/cold-build.log" "$COLD_READY_TIMEOUT"; then
    (( STORE_HAVE > 0 )) || return 1
    log "the cached store $STORE does not open with this build; rebuilding it"
    rm -rf "$STORE"
    mkdir -p "$STORE/data"
    STORE_HAVE=0
    start_server "$STORE/data" "$WORK/cold-build.log" "$COLD_READY_TIMEOUT" || return 1
  fi
  log "growing the cold-start store $STORE from $STORE_HAVE to $COLD_M accounts" \
      "(cap ${COLD_SEED_TIMEOUT}s, 0 = none)"
  SEED_CAP=$COLD_SEED_TIMEOUT seed --start "$STORE_HAVE" --count $(( COLD_M - STORE_HAVE )) \
    --total "$COLD_M" --ids-out "$STORE/ids.txt" || log "warning: seeding reported errors"
  log "added $SEED_created accounts in ${SEED_seconds}s (${SEED_rate}/s, mode $SEED_mode)"
  put cold_seed_rate "$SEED_rate"
  put cold_seed_mode "$SEED_mode"
  stop_server
  STORE_HAVE=$(( $(cat "$STORE/ids.txt" 2>/dev/null | wc -l) ))
  return 0
}

# measure_cold: BENCH_COLD_RUNS timed starts on STORE. Returns 2 if the very first start fails.
measure_cold() {
  local run verify id code
  local -a times=() sorted=()
  put cold_store_bytes "$(du -sb "$STORE/data" | cut -f1)"
  put cold_page_cache warm
  for (( run = 1; run <= COLD_RUNS; run++ )); do
    if [[ $DROP_CACHES == 1 ]]; then
      if sync && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        put cold_page_cache dropped
      else
        log "cannot drop the page cache (not root?); measuring with a warm cache"
      fi
    fi
    if ! start_server "$STORE/data" "$WORK/cold-$run.log" "$COLD_READY_TIMEOUT"; then
      log "cold start $run failed"
      (( run == 1 )) && return 2
      break
    fi
    times+=("$READY_US")
    log "cold start $run: $(( READY_US / 1000 )) ms with $STORE_HAVE accounts"
    if (( run == 1 )); then
      sleep 1
      put cold_idle_rss_kb "$(proc_kb "$SERVER_PID" VmRSS)"
      # What was acknowledged must still be there: fetch the first and the last seeded account.
      TOKEN=$(get_token) || TOKEN=""
      verify=ok
      for id in "$(head -n 1 "$STORE/ids.txt")" "$(tail -n 1 "$STORE/ids.txt")"; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
          -H "Authorization: Bearer $TOKEN" "$URL/api/data/v9.2/accounts($id)") || code=000
        [[ $code == 200 ]] || verify="failed: GET accounts($id) answered $code"
      done
      put cold_verify "$verify"
      [[ $verify == ok ]] || log "warning: cold-start store check $verify (stale cache? BENCH_REBUILD_CACHE=1)"
    fi
    stop_server
  done
  mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
  put cold_runs "${#sorted[@]}"
  put cold_min_us "${sorted[0]}"
  put cold_median_us "${sorted[$(( ${#sorted[@]} / 2 ))]}"
  put cold_max_us "${sorted[-1]}"
}

run_cold() {
  local attempt rc
  if [[ $CACHE == 1 ]]; then
    STORE="$CACHE_DIR/store-$COLD_M"
    mkdir -p "$CACHE_DIR"
    [[ -e $CACHE_DIR/.gitignore ]] || printf '*\n' >"$CACHE_DIR/.gitignore"
  else
    STORE="$WORK/cold-store"
  fi
  [[ $REBUILD_CACHE == 1 ]] && rm -rf "$STORE"
  for attempt in 1 2; do
    if ! build_store; then
      put cold_error "the server did not start on the cold-start store"
      return 1
    fi
    put cold_target "$COLD_M"
    put cold_accounts "$STORE_HAVE"
    if (( STORE_HAVE < COLD_M )); then
      log "cold-start store has $STORE_HAVE of $COLD_M accounts (it is grown further on the next run)"
    fi
    if (( STORE_HAVE == 0 )); then
      put cold_error "no account could be added to the cold-start store"
      return 1
    fi
    rc=0
    measure_cold || rc=$?
    (( rc == 0 )) && return 0
    if (( attempt == 1 && rc == 2 )) && [[ $CACHE == 1 ]]; then
      log "the server does not start on the cached store $STORE; rebuilding it"
      rm -rf "$STORE"
      continue
    fi
    put cold_error "the server did not start on the cold-start store"
    return 1
  done
}

if (( HAVE_SERVER )); then
  if run_webapi; then
    if [[ $COLD == 1 ]]; then run_cold || log "cold-start measurement failed"; fi
  else
    log "Web API runs aborted"
    stop_server
  fi
fi

# ----------------------------------------------------------------------------------------------
# Raw SQLite ceiling
# ----------------------------------------------------------------------------------------------

if [[ $RAW == 1 ]]; then
  RAW_BIN=${BENCH_RAW_BIN:-}
  if [[ -z $RAW_BIN ]]; then
    for candidate in "$ROOT/build/bench/bench_raw_sqlite" "$ROOT/build/bench_raw_sqlite"; do
      [[ -x $candidate ]] && { RAW_BIN=$candidate; break; }
    done
  fi
  if [[ -z $RAW_BIN && -f $ROOT/build/CMakeCache.txt ]]; then
    log "building bench_raw_sqlite"
    run_child timeout 300 cmake --build "$ROOT/build" --target bench_raw_sqlite >"$WORK/raw-build.log" 2>&1 || true
    [[ -x $ROOT/build/bench/bench_raw_sqlite ]] && RAW_BIN="$ROOT/build/bench/bench_raw_sqlite"
  fi
  if [[ -n $RAW_BIN && -x $RAW_BIN ]]; then
    log "running $RAW_BIN (min_time $RAW_MIN_TIME)"
    sync  # flush what the server wrote, so its writeback does not slow the fsync benchmarks
    if BENCH_TMPDIR=$TMP_PARENT run_child timeout 600 "$RAW_BIN" --benchmark_min_time="$RAW_MIN_TIME" \
        --benchmark_out="$WORK/raw.json" --benchmark_out_format=json >"$WORK/raw.txt" 2>&1; then
      grep '^BM_' "$WORK/raw.txt" | sed 's/^/    /' >&2 || true
    else
      log "bench_raw_sqlite failed:"
      tail -n 20 "$WORK/raw.txt" >&2 || true
      rm -f "$WORK/raw.json"
    fi
  else
    log "bench_raw_sqlite not built (cmake --build build --target bench_raw_sqlite); no ceiling figures"
  fi
fi

# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

mkdir -p "$RESULTS_DIR"
out="$RESULTS_DIR/$(date +%Y-%m-%d).md"
[[ -e $out ]] && out="$RESULTS_DIR/$(date +%Y-%m-%d-%H%M%S).md"
node "$BENCH_DIR/report.mjs" "$WORK" >"$WORK/report.md"
sed '/^<!-- details -->$/,$d' "$WORK/report.md"
cp "$WORK/report.md" "$out"
log "results written to ${out#"$ROOT"/}"
