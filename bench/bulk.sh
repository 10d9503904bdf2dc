#!/usr/bin/env bash
# bench/bulk.sh — bulk-write, alternate-key and $batch benchmark for Tributary (issue 3), with the
# raw-SQLite ceiling. `make bench` runs it after bench/webapi.sh.
#
# Starts build/tributary on a fresh temporary data dir (with bench/schema.yaml applied: an alternate
# key on account.accountnumber) and measures, all durable (every response after its fsync'd commit):
#   1. CreateMultiple and UpsertMultiple of 1,000-record batches (bench/bulk.mjs), with 1, 2 and 4
#      requests in flight: new rows, existing rows by accountid, existing rows by alternate key,
#      new rows by alternate key;
#   2. the same kind of record sent one POST each (wrk, create.lua);
#   3. single-record PATCH upserts of existing rows by GUID and by alternate key (wrk, upsert.lua);
#   4. a $batch with one change set of 1,000 POST (median of 5) and one of 1,000 PATCH (batch.mjs);
#   5. bench_raw_sqlite's BM_Account* ceilings: 1,000 inserts / updates per fsync'd commit on a copy
#      of Tributary's account table.
# It prints a markdown table with the ratios and appends it to the bench/results file of the
# webapi.sh run that just finished (or a new one). See bench/README.md for what each figure means.
#
# Environment variables (defaults in brackets):
#   BENCH_BULK_BATCHES [100]       requests per bulk run
#   BENCH_BULK_SIZE [1000]         records per request
#   BENCH_BULK_INFLIGHT ["1 2 4"]  in-flight settings tried for every bulk operation
#   BENCH_BULK_MAX_SECONDS [20]    a bulk run starts no new request after this long
#   BENCH_DURATION [10s], BENCH_WARMUP [2s], BENCH_CONNECTIONS [64], BENCH_THREADS [2]   wrk runs
#   BENCH_BATCH_SIZE [1000]        requests in the $batch change set
#   BENCH_BATCH_RUNS [5]           timed POST change sets (the median is reported)
#   BENCH_RAW [1]                  0 = skip bench_raw_sqlite
#   BENCH_RAW_MIN_TIME [0.5]       --benchmark_min_time for bench_raw_sqlite
#   BENCH_RESULTS_FILE             file to append the report to; default: the newest report in
#                                  BENCH_RESULTS_DIR written in the last 10 minutes (the webapi.sh run
#                                  of `make bench`), else a new BENCH_RESULTS_DIR/<date>.md
#   BENCH_RESULTS_DIR [bench/results]
#   BENCH_TMPDIR [/tmp]            parent of the temporary data dir (must not be tmpfs for fsync)
#   BENCH_BUILD_LOCK               if set, builds run under `flock $BENCH_BUILD_LOCK`
#   TRIBUTARY_BIN [build/tributary], BENCH_RAW_BIN [build/bench/bench_raw_sqlite]
#   BENCH_CLIENT_ID / BENCH_CLIENT_SECRET   bootstrap app-user credentials (fixed defaults)
#
# About 75 s with the defaults on the 2-core reference machine; the per-run caps keep it under ~4
# minutes on a slow one. The server is always stopped on exit (trap), including on Ctrl-C.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"

BIN=${TRIBUTARY_BIN:-$ROOT/build/tributary}
BATCHES=${BENCH_BULK_BATCHES:-100}
SIZE=${BENCH_BULK_SIZE:-1000}
INFLIGHT=${BENCH_BULK_INFLIGHT:-1 2 4}
BULK_MAX_SECONDS=${BENCH_BULK_MAX_SECONDS:-20}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
BATCH_SIZE=${BENCH_BATCH_SIZE:-1000}
BATCH_RUNS=${BENCH_BATCH_RUNS:-5}
RAW=${BENCH_RAW:-1}
RAW_MIN_TIME=${BENCH_RAW_MIN_TIME:-0.5}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$BENCH_DIR/results}
RESULTS_FILE=${BENCH_RESULTS_FILE:-}
TMP_PARENT=${BENCH_TMPDIR:-/tmp}
export BENCH_CLIENT_ID=${BENCH_CLIENT_ID:-7c0e5a52-3f1d-4b8e-9a61-2d4c6e8f0a13}
export BENCH_CLIENT_SECRET=${BENCH_CLIENT_SECRET:-tributary-bench-secret-5f2b9c1e7d}

START_READY_TIMEOUT=60  # seconds a fresh server may take to print "listening on"

# log, die, to_seconds, put, start_server, stop_server, get_token, run_wrk, ...: see lib.sh
source "$BENCH_DIR/lib.sh"
DUR_S=$(to_seconds "$DURATION")
if [[ $WARMUP == 0 || $WARMUP == 0s ]]; then WARMUP=""; fi
read -r -a INFLIGHT_LIST <<<"$INFLIGHT"
(( ${#INFLIGHT_LIST[@]} )) || die "BENCH_BULK_INFLIGHT is empty"

# The report goes to the webapi.sh report `make bench` has just written, if there is one. Chosen
# now, before this run's own minutes pass.
if [[ -z $RESULTS_FILE ]]; then
  RESULTS_FILE=$(find "$RESULTS_DIR" -maxdepth 1 -name '*.md' -mmin -10 -printf '%T@ %p\n' 2>/dev/null |
    sort -n | tail -n 1 | cut -d' ' -f2-) || RESULTS_FILE=""
fi

bench_workdir bulk

put_machine
put duration "$DURATION"
put connections "$CONNECTIONS"
put threads "$THREADS"
put bulk_batches "$BATCHES"
put bulk_size "$SIZE"
put bulk_inflight "${INFLIGHT_LIST[*]}"
if [[ $FSTYPE == tmpfs ]]; then
  log "warning: $TMP_PARENT is tmpfs; fsync costs nothing there, the figures are not durable-write figures"
fi

# build TARGET...: builds CMake targets in build/ (under flock BENCH_BUILD_LOCK if set).
build() {
  [[ -f $ROOT/build/CMakeCache.txt ]] || return 1
  local lock=()
  [[ -n ${BENCH_BUILD_LOCK:-} ]] && lock=(flock "$BENCH_BUILD_LOCK")
  log "building $*"
  run_child timeout 900 "${lock[@]}" cmake --build "$ROOT/build" --target "$@" >>"$WORK/build.log" 2>&1 || {
    log "build of $* failed; last lines:"
    tail -n 20 "$WORK/build.log" >&2
    return 1
  }
}

missing=()
for tool in wrk curl node; do command -v "$tool" >/dev/null || missing+=("$tool"); done
HAVE_SERVER=1
if [[ ! -x $BIN && -z ${TRIBUTARY_BIN:-} ]]; then build tributary || true; fi
if [[ ! -x $BIN ]]; then
  log "$BIN not found: skipping the Web API runs (build it first); only the raw SQLite ceiling runs"
  HAVE_SERVER=0
  put server_error "not run: $BIN not found"
elif (( ${#missing[@]} )); then
  log "missing tools: ${missing[*]}: skipping the Web API runs"
  HAVE_SERVER=0
  put server_error "not run: missing ${missing[*]}"
fi

# ----------------------------------------------------------------------------------------------
# Web API
# ----------------------------------------------------------------------------------------------

# bulk NAME K ARGS... : one bulk.mjs run with K requests in flight; its summary goes to $RESULTS
# as NAME_K_<key> (rate, records, errors, seconds, req_p50_ms, req_max_ms).
bulk() {
  local name=$1 k=$2 kv
  shift 2
  log "$name: $BATCHES x $SIZE records, $k in flight"
  run_child timeout $(( BULK_MAX_SECONDS + 120 )) node "$BENCH_DIR/bulk.mjs" --base "$URL" --size "$SIZE" \
    --batches "$BATCHES" --inflight "$k" --max-seconds "$BULK_MAX_SECONDS" "$@" \
    >"$WORK/bulk.$name.$k.out" 2> >(tee -a "$WORK/bulk.log" >&2) || true
  local summary
  summary=$(tail -n 1 "$WORK/bulk.$name.$k.out")
  if [[ $summary != op=* ]]; then
    log "$name: bulk.mjs produced no result"
    put "${name}_${k}_errors" 1
    return 0
  fi
  printf '%s\n' "$summary" >>"$WORK/bulk.log"
  log "    $summary"
  for kv in $summary; do put "${name}_${k}_${kv%%=*}" "${kv#*=}"; done
}

run_webapi() {
  local DATA="$WORK/data" k code
  mkdir -p "$DATA"
  log "applying bench/schema.yaml to $DATA"
  if ! TRIBUTARY_BOOTSTRAP_CLIENT_ID=$BENCH_CLIENT_ID TRIBUTARY_BOOTSTRAP_CLIENT_SECRET=$BENCH_CLIENT_SECRET \
      "$BIN" schema apply --data "$DATA" "$BENCH_DIR/schema.yaml" >"$WORK/schema.log" 2>&1; then
    cat "$WORK/schema.log" >&2
    put server_error "tributary schema apply bench/schema.yaml failed"
    return 1
  fi
  log "starting $BIN on $DATA"
  if ! start_server "$DATA" "$WORK/server.log" "$START_READY_TIMEOUT"; then
    put server_error "the server did not start (see the log above)"
    return 1
  fi
  log "listening on $URL (pid $SERVER_PID)"
  if ! TOKEN=$(get_token); then
    put server_error "no token from POST /oauth2/v2.0/token"
    return 1
  fi
  export BENCH_TOKEN=$TOKEN BENCH_RUN_ID=$$

  # 1. Bulk messages. The rows created by the first CreateMultiple run are the existing rows the
  # upserts (bulk and single) update. The data dir is new, so short tags keep accountnumber values
  # ("B-<tag>-<i>", at most 20 characters) unique.
  for k in "${INFLIGHT_LIST[@]}"; do
    bulk create "$k" --op create --tag "c$k" --records-out "$WORK/records.c$k"
  done
  local records="$WORK/records.c${INFLIGHT_LIST[0]}"
  if [[ ! -s $records ]]; then
    put server_error "CreateMultiple created no account"
    return 1
  fi
  for k in "${INFLIGHT_LIST[@]}"; do
    bulk upsert_id "$k" --op upsert-id --tag "i$k" --records "$records"
    bulk upsert_key "$k" --op upsert-key --tag "k$k" --records "$records"
  done
  for k in "${INFLIGHT_LIST[@]}"; do
    bulk upsert_key_new "$k" --op upsert-key-new --tag "n$k"
  done

  # 2, 3. wrk: single PATCH upserts of the same existing rows by id and by alternate key, then one
  # POST per new account.
  awk '{ print $1 }' "$records" >"$WORK/keys.id"
  awk -v q="'" '{ gsub(q, q q, $2); print "accountnumber=" q $2 q }' "$records" >"$WORK/keys.alt"
  export BENCH_UPSERT_KEYS_FILE="$WORK/keys.id"
  run_wrk patch_id "$BENCH_DIR/upsert.lua" "/api/data/v9.2/accounts"
  export BENCH_UPSERT_KEYS_FILE="$WORK/keys.alt"
  run_wrk patch_key "$BENCH_DIR/upsert.lua" "/api/data/v9.2/accounts"
  run_wrk post "$BENCH_DIR/create.lua" "/api/data/v9.2/accounts"

  # 4. $batch.
  log "\$batch: one change set of $BATCH_SIZE POST accounts x $BATCH_RUNS, then $BATCH_SIZE PATCH"
  run_child timeout 300 node "$BENCH_DIR/batch.mjs" --base "$URL" --size "$BATCH_SIZE" --runs "$BATCH_RUNS" \
    --results "$RESULTS" || log "warning: batch.mjs reported an error"

  put peak_rss_kb "$(proc_kb "$SERVER_PID" VmHWM)"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Authorization: Bearer $TOKEN" \
    "$URL/api/data/v9.2/accounts?\$top=1&\$count=true") || code=000
  [[ $code == 200 ]] || log "warning: GET accounts after the runs answered $code"
  stop_server
  log "server stopped"

  # The shape of the server's account table, so the report can tell if BM_Account* (which copies
  # it) has drifted from it. Needs the sqlite3 shell; skipped without it.
  if command -v sqlite3 >/dev/null && [[ -f $DATA/tributary.db ]]; then
    put server_account_columns "$(sqlite3 "$DATA/tributary.db" "SELECT count(*) FROM pragma_table_info('account')")"
    put server_account_indexes \
      "$(sqlite3 "$DATA/tributary.db" "SELECT count(*) FROM pragma_index_list('account') WHERE origin = 'c'")"
    put server_account_rows "$(sqlite3 "$DATA/tributary.db" "SELECT count(*) FROM account")"
  fi
}

if (( HAVE_SERVER )); then
  run_webapi || { log "Web API runs aborted"; stop_server; }
fi

# ----------------------------------------------------------------------------------------------
# Raw SQLite ceiling (BM_Account*: Tributary's account table)
# ----------------------------------------------------------------------------------------------

if [[ $RAW == 1 ]]; then
  RAW_BIN=${BENCH_RAW_BIN:-$ROOT/build/bench/bench_raw_sqlite}
  if [[ -z ${BENCH_RAW_BIN:-} ]] && { [[ ! -x $RAW_BIN ]] ||
      ! "$RAW_BIN" --benchmark_list_tests 2>/dev/null | grep -q '^BM_AccountInsert1000'; }; then
    build bench_raw_sqlite || true
  fi
  if [[ -x $RAW_BIN ]]; then
    log "running $RAW_BIN --benchmark_filter=^BM_Account (min_time $RAW_MIN_TIME)"
    sync  # flush what the server wrote, so its writeback does not slow the fsync benchmarks
    # BENCH_ROWS=2000: the smallest setup for the benchmarks this script does not run.
    if BENCH_ROWS=2000 BENCH_TMPDIR=$TMP_PARENT run_child timeout 300 "$RAW_BIN" --benchmark_filter='^BM_Account' \
        --benchmark_min_time="$RAW_MIN_TIME" --benchmark_out="$WORK/raw.json" --benchmark_out_format=json \
        >"$WORK/raw.txt" 2>&1; then
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

node "$BENCH_DIR/bulk.mjs" --report "$WORK" >"$WORK/report.md"
cat "$WORK/report.md"
if [[ -z $RESULTS_FILE ]]; then
  mkdir -p "$RESULTS_DIR"
  RESULTS_FILE="$RESULTS_DIR/$(date +%Y-%m-%d).md"
  [[ -e $RESULTS_FILE ]] && RESULTS_FILE="$RESULTS_DIR/$(date +%Y-%m-%d-%H%M%S).md"
fi
{
  printf '\n'
  cat "$WORK/report.md"
  printf '<details><summary>bulk.sh details</summary>\n\n```\n'
  cat "$WORK/bulk.log" 2>/dev/null || true
  for name in patch_id patch_key post; do
    [[ -f $WORK/wrk.$name.txt ]] && { printf -- '--- wrk %s\n' "$name"; cat "$WORK/wrk.$name.txt"; }
  done
  grep '^batch_' "$RESULTS" || true
  [[ -f $WORK/raw.txt ]] && { printf -- '--- bench_raw_sqlite\n'; cat "$WORK/raw.txt"; }
  printf '```\n\n</details>\n'
} >>"$RESULTS_FILE"
log "results appended to ${RESULTS_FILE#"$ROOT"/}"
