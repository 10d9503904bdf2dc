#!/usr/bin/env bash
# bench/security.sh — the cost of record-level security checks (issue 4): the Web API core reads as
# the System Administrator (no row checks) and as a user with Business Unit (Local) read depth.
#
# Starts build/tributary on a fresh temporary data dir and builds an organization through the Web
# API (bench/security.mjs setup): 100 business units (root → 9 → 90), 10,000 users spread over them,
# 20,000 accounts owned by those users (each unit's accounts by its own users), a role with
# prvReadAccount at Local depth for one user of a leaf unit. Then wrk, with webapi.sh's settings
# (-t2 -c64, 10 s after a 2 s warm-up), runs GET by id over the accounts of that unit and the
# filtered query ($filter on accountnumber, $top=50; each value matches 50 accounts of that unit)
# as the admin and as the user, BENCH_SEC_ROUNDS times (admin first in odd rounds, user first in
# even ones). Both callers get the same rows, so the difference is the cost of the checks: the
# principal lookup and the row condition `ownerid IN (user, teams) OR owningbusinessunit IN (unit)
# OR EXISTS (shares)` in the SQL. Then, apart from the target: a list without a filter ($top=50),
# and GET by id as all 10,000 users in turn (the role given to every unit's default team).
# Reported: req/s, p99, the server's CPU time per request and the overhead 1 − user ÷ admin req/s
# (target ≤ 15%). The table is printed and appended to the bench/results report written in the last
# 10 minutes (the webapi.sh / bulk.sh run of `make bench`), else to a new bench/results/<date>.md.
#
# How the user calls (BENCH_SEC_CALLER):
#   auto         cli if `tributary user create --app` exists, else credential, else impersonate
#   cli          `tributary user create --app --business-unit <unit> --role <role>`: a new
#                application user of that unit with its own client id and secret
#   credential   a client credential for the setup's user, written into the store's _t_credential
#                with the sqlite3 shell (what `user create --app` stores); a real token of the user
#   impersonate  the admin's token with `MSCRMCallerID: <user>`
# With a real token, two more GET runs measure what impersonation adds: the user's token, then the
# admin's token with MSCRMCallerID of the user.
#
# Environment variables (defaults in brackets):
#   BENCH_SEC_BUS [100]  BENCH_SEC_USERS [10000]  BENCH_SEC_ACCOUNTS [20000]   organization size
#   BENCH_SEC_ROUNDS [2]           admin/user pairs of runs per operation
#   BENCH_SEC_CALLER [auto]        see above
#   BENCH_SEC_IMPERSONATION [1]    0 = skip the impersonation run
#   BENCH_SEC_LIST [1]             0 = skip the list without a filter (accounts?$top=50, one run
#                                  each; reported apart from the target)
#   BENCH_SEC_MANY [1]             0 = skip GET by id as every user in turn (impersonation, one run
#                                  as one user, one as all; reported apart from the target)
#   BENCH_SEC_TARGET [0.15]        the overhead target
#   BENCH_SEC_CALLGRIND [auto]     1 / auto (when valgrind is installed): afterwards, count the
#                                  server's instructions per request under callgrind (exact, not
#                                  disturbed by other work on the machine); 0 = skip
#   BENCH_SEC_CALLGRIND_REQUESTS [1000]  GETs per callgrind measurement (queries: a quarter)
#   BENCH_SEC_IDLE_WAIT [0]        on a shared machine: before each admin/user pair, wait up to this
#                                  many seconds until the CPUs are below BENCH_SEC_IDLE_BUSY [15]
#                                  percent busy (recorded per pair as <op>_<round>_busy)
#   BENCH_SEC_SETUP_TIMEOUT [150]  seconds the setup may take
#   BENCH_DURATION [10s], BENCH_WARMUP [2s], BENCH_CONNECTIONS [64], BENCH_THREADS [2]   wrk runs
#   BENCH_RESULTS_FILE, BENCH_RESULTS_DIR [bench/results], BENCH_TMPDIR [/tmp]
#   TRIBUTARY_BIN [build/tributary], BENCH_CLIENT_ID / BENCH_CLIENT_SECRET (bootstrap app user)
#
# About 3 minutes with the defaults (setup a few seconds, 14 wrk runs of 12 s); the setup is
# capped at BENCH_SEC_SETUP_TIMEOUT. The server is always stopped on exit (trap), also on Ctrl-C.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"

BIN=${TRIBUTARY_BIN:-$ROOT/build/tributary}
N_BUS=${BENCH_SEC_BUS:-100}
N_USERS=${BENCH_SEC_USERS:-10000}
N_ACCOUNTS=${BENCH_SEC_ACCOUNTS:-20000}
ROUNDS=${BENCH_SEC_ROUNDS:-2}
CALLER_MODE=${BENCH_SEC_CALLER:-auto}
IMPERSONATION=${BENCH_SEC_IMPERSONATION:-1}
LIST=${BENCH_SEC_LIST:-1}
MANY=${BENCH_SEC_MANY:-1}
CALLGRIND=${BENCH_SEC_CALLGRIND:-auto}
CG_REQUESTS=${BENCH_SEC_CALLGRIND_REQUESTS:-1000}
IDLE_WAIT=${BENCH_SEC_IDLE_WAIT:-0}
IDLE_BUSY=${BENCH_SEC_IDLE_BUSY:-15}
TARGET=${BENCH_SEC_TARGET:-0.15}
SETUP_TIMEOUT=${BENCH_SEC_SETUP_TIMEOUT:-150}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$BENCH_DIR/results}
RESULTS_FILE=${BENCH_RESULTS_FILE:-}
TMP_PARENT=${BENCH_TMPDIR:-/tmp}
export BENCH_CLIENT_ID=${BENCH_CLIENT_ID:-7c0e5a52-3f1d-4b8e-9a61-2d4c6e8f0a13}
export BENCH_CLIENT_SECRET=${BENCH_CLIENT_SECRET:-tributary-bench-secret-5f2b9c1e7d}

START_READY_TIMEOUT=60
API=/api/data/v9.2

# log, die, to_seconds, put, start_server, stop_server, get_token, run_wrk, ...: see lib.sh
source "$BENCH_DIR/lib.sh"
DUR_S=$(to_seconds "$DURATION")
if [[ $WARMUP == 0 || $WARMUP == 0s ]]; then WARMUP=""; fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SEC_ROUNDS must be a positive number"
[[ $IDLE_WAIT =~ ^[0-9]+$ && $IDLE_BUSY =~ ^[0-9]+$ ]] || die "BENCH_SEC_IDLE_WAIT / _BUSY must be numbers"
case $CALLER_MODE in
  auto | cli | credential | impersonate) ;;
  *) die "BENCH_SEC_CALLER: auto|cli|credential|impersonate" ;;
esac

if [[ -z $RESULTS_FILE ]]; then
  RESULTS_FILE=$(find "$RESULTS_DIR" -maxdepth 1 -name '*.md' -mmin -10 -printf '%T@ %p\n' 2>/dev/null |
    sort -n | tail -n 1 | cut -d' ' -f2-) || RESULTS_FILE=""
fi

bench_workdir security

put_machine
put duration "$DURATION"
put warmup "${WARMUP:-none}"
put connections "$CONNECTIONS"
put threads "$THREADS"
put rounds "$ROUNDS"
put target_overhead "$TARGET"
put idle_wait "$IDLE_WAIT"
put idle_busy "$IDLE_BUSY"
put load_before "$(cut -d' ' -f1-3 /proc/loadavg)"

for tool in wrk curl node; do command -v "$tool" >/dev/null || die "$tool is needed"; done
[[ -x $BIN ]] || die "$BIN not found (build it first)"

# cpu_ticks: user + system clock ticks the server has used so far.
cpu_ticks() {
  local st
  st=$(cat "/proc/$SERVER_PID/stat" 2>/dev/null) || { echo 0; return; }
  st=${st##*) }
  local -a f
  read -r -a f <<<"$st"
  echo $(( f[11] + f[12] ))  # utime, stime: fields 14 and 15 of stat, 12 and 13 after "pid (comm) "
}

# measure NAME SCRIPT [VAR=VALUE...]: run_wrk with the given environment; also records the server's
# CPU time per request of the measured run (NAME_cpu_us).
measure() {
  local name=$1 script=$2 t0 t1 n hz
  shift 2
  local saved_token=$BENCH_TOKEN saved_caller=${BENCH_CALLER_ID:-}
  local kv
  for kv in "$@"; do export "${kv%%=*}=${kv#*=}"; done
  # Warm-up and measured run; the CPU counter spans only the measured one, so run the warm-up
  # separately first.
  if [[ -n $WARMUP ]]; then
    BENCH_RESULT_FILE=/dev/null run_child timeout $(( $(to_seconds "$WARMUP") + 30 )) \
      wrk -t"$THREADS" -c"$CONNECTIONS" --timeout 5s -d"$WARMUP" -s "$script" "$URL$API/accounts" \
      >/dev/null 2>&1 || true
  fi
  t0=$(cpu_ticks)
  WARMUP="" run_wrk "$name" "$script" "$API/accounts"
  t1=$(cpu_ticks)
  n=$(grep "^${name}_requests=" "$RESULTS" | tail -n 1 | cut -d= -f2)
  hz=$(getconf CLK_TCK)
  if [[ -n $n && $n -gt 0 ]]; then
    put "${name}_cpu_us" "$(awk -v t=$(( t1 - t0 )) -v hz="$hz" -v n="$n" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
  fi
  export BENCH_TOKEN=$saved_token BENCH_CALLER_ID=$saved_caller
}

# busy_pct: how busy the machine's CPUs were over the next second, in percent (/proc/stat).
busy_pct() {
  local -a a b
  read -r -a a < <(head -n 1 /proc/stat)
  sleep 1
  read -r -a b < <(head -n 1 /proc/stat)
  local total=0 idle i
  for (( i = 1; i <= 8; i++ )); do total=$(( total + b[i] - a[i] )); done
  idle=$(( b[4] - a[4] + b[5] - a[5] ))
  (( total > 0 )) || { echo 0; return; }
  echo $(( 100 - idle * 100 / total ))
}

# wait_idle NAME: with BENCH_SEC_IDLE_WAIT > 0, waits up to that many seconds until the machine is
# below BENCH_SEC_IDLE_BUSY percent busy (the server idles between runs, so that is other work), and
# records the last reading as NAME_busy.
wait_idle() {
  (( IDLE_WAIT > 0 )) || return 0
  local deadline=$(( SECONDS + IDLE_WAIT )) busy
  while :; do
    busy=$(busy_pct)
    (( busy < IDLE_BUSY )) && break
    if (( SECONDS >= deadline )); then
      log "the machine is still ${busy}% busy after ${IDLE_WAIT}s; measuring anyway"
      break
    fi
  done
  put "${1}_busy" "$busy"
}

# user_token_cli: creates the benchmark user with `tributary user create --app`; sets USER_TOKEN
# and USER_ID. Fails when the command does not exist or does not answer as expected.
user_token_cli() {
  "$BIN" user create --help 2>/dev/null | grep -q -- '--app' || return 1
  local out id secret
  out=$("$BIN" user create --data "$DATA" --name "Bench BU Reader" --app --business-unit "$USER_BU" \
    --role "$ROLE_NAME" 2>>"$WORK/cli.log") || {
    log "tributary user create failed: $(tail -n 3 "$WORK/cli.log")"
    return 1
  }
  read -r USER_ID id secret < <(node -e '
    const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
    if (!j.systemuserid || !j.client_id || !j.client_secret) process.exit(1);
    console.log(j.systemuserid, j.client_id, j.client_secret);' <<<"$out") || return 1
  USER_TOKEN=$(BENCH_CLIENT_ID=$id BENCH_CLIENT_SECRET=$secret get_token) || return 1
}

# user_token_credential: a client credential for the setup's user (the bootstrap secret's hash,
# another client id), written with the sqlite3 shell while the server runs (WAL); sets USER_TOKEN.
user_token_credential() {
  command -v sqlite3 >/dev/null || return 1
  # A GUID, like the client ids `user create --app` makes: the token is as long as the admin's, so
  # checking its signature costs the same.
  local client=5b1e0c7a-8d2f-4c3e-9a41-7f6b2d9e8c10
  sqlite3 "$DATA/tributary.db" "PRAGMA busy_timeout = 10000;" \
    "INSERT OR REPLACE INTO _t_credential (client_id, secret_hash, systemuserid)
     SELECT '$client', secret_hash, '$SETUP_USER' FROM _t_credential WHERE client_id = '$BENCH_CLIENT_ID';" \
    >/dev/null 2>>"$WORK/cli.log" || return 1
  USER_ID=$SETUP_USER
  USER_TOKEN=$(BENCH_CLIENT_ID=$client get_token) || return 1
}

# seq_as WHO USER_CALLER KIND COUNT: COUNT sequential requests (security.mjs seq) as the admin
# (WHO=admin), the user (user; USER_CALLER is its MSCRMCallerID when it impersonates) or the admin
# impersonating the user (imp).
seq_as() {
  local token=$TOKEN caller=""
  case $1 in
    user) token=$USER_TOKEN caller=$2 ;;
    imp) caller=$USER_ID ;;
  esac
  BENCH_TOKEN=$token BENCH_CALLER_ID=$caller run_child timeout 600 node "$BENCH_DIR/security.mjs" seq \
    --base "$URL" --out "$WORK" --kind "$3" --count "$4"
}

# run_callgrind USER_CALLER: restarts the server under valgrind's callgrind on the same data and
# counts its instructions per request for GET by id and the filtered query, as the admin and as the
# user (and, with a real user token, GET by impersonation): CG_REQUESTS sequential requests each,
# after a warm-up. Instruction counts do not depend on the machine's load. Results: cg_<op>_<who>_ir.
run_callgrind() {
  local real=$BIN wrapper="$WORK/valgrind-tributary" n f name total
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=%s/cg.%%p "%s" "$@"\n' \
    "$WORK" "$real" >"$wrapper"
  chmod +x "$wrapper"
  log "callgrind: restarting the server under valgrind"
  BIN=$wrapper
  if ! start_server "$DATA" "$WORK/callgrind-server.log" 180; then
    BIN=$real
    log "warning: the server did not start under valgrind; no instruction counts"
    return 0
  fi
  BIN=$real
  local -a specs=("get admin" "get user" "query admin" "query user")
  [[ -z $1 ]] && specs+=("get imp")
  local spec kind who ok=1
  for spec in "${specs[@]}"; do  # warm-up: statement and principal caches
    read -r kind who <<<"$spec"
    seq_as "$who" "$1" "$kind" $(( CG_REQUESTS / 5 + 1 )) || ok=0
  done
  for spec in "${specs[@]}"; do
    read -r kind who <<<"$spec"
    n=$CG_REQUESTS
    [[ $kind == query ]] && n=$(( CG_REQUESTS / 4 ))
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1 && callgrind_control -i on "$SERVER_PID" >/dev/null 2>&1 || ok=0
    seq_as "$who" "$1" "$kind" "$n" || ok=0
    callgrind_control -i off "$SERVER_PID" >/dev/null 2>&1 || ok=0
    callgrind_control -d "cg_${kind}_${who}:$n" "$SERVER_PID" >/dev/null 2>&1 || ok=0
    log "callgrind: $kind as $who, $n requests"
  done
  stop_server
  (( ok )) || { log "warning: a callgrind step failed; no instruction counts"; return 0; }
  put cg_requests "$CG_REQUESTS GET / $(( CG_REQUESTS / 4 )) queries"
  for f in "$WORK"/cg.*.*; do
    name=$(sed -n 's/^desc: Trigger: dump //p' "$f" | head -n 1)
    total=$(sed -n 's/^totals: //p' "$f" | head -n 1)
    [[ $name == cg_*:* && -n $total ]] || continue
    put "${name%%:*}_ir" $(( total / ${name##*:} ))
  done
}

run_security() {
  DATA="$WORK/data"
  mkdir -p "$DATA"
  log "starting $BIN on $DATA"
  start_server "$DATA" "$WORK/server.log" "$START_READY_TIMEOUT" || { put error "the server did not start"; return 1; }
  log "listening on $URL (pid $SERVER_PID)"
  TOKEN=$(get_token) || { put error "no token from POST /oauth2/v2.0/token"; return 1; }
  export BENCH_TOKEN=$TOKEN BENCH_CALLER_ID=""

  log "setup: $N_BUS business units, $N_USERS users, $N_ACCOUNTS accounts"
  if ! run_child timeout $(( SETUP_TIMEOUT + 30 )) node "$BENCH_DIR/security.mjs" setup --base "$URL" --out "$WORK" \
      --bus "$N_BUS" --users "$N_USERS" --accounts "$N_ACCOUNTS" --max-seconds "$SETUP_TIMEOUT"; then
    put error "setup failed (see above)"
    return 1
  fi
  SETUP_USER=$(sed -n 's/^user=//p' "$WORK/setup.env")
  USER_BU=$(sed -n 's/^user_bu=//p' "$WORK/setup.env")
  ROLE_NAME=$(sed -n 's/^role_name=//p' "$WORK/setup.env")

  USER_TOKEN="" USER_ID="" CALLER=""
  local mode
  for mode in cli credential impersonate; do
    [[ $CALLER_MODE == auto || $CALLER_MODE == "$mode" ]] || continue
    case $mode in
      cli) user_token_cli && CALLER="the token of an application user created by \`tributary user create --app\`" ;;
      credential) user_token_credential && CALLER="its own token (client credential written into the store)" ;;
      impersonate)
        USER_ID=$SETUP_USER USER_TOKEN=$TOKEN
        CALLER="the admin's token with MSCRMCallerID (impersonation)"
        ;;
    esac
    [[ -n $CALLER ]] && break
    log "caller mode $mode is not available here"
  done
  [[ -n $CALLER ]] || { put error "no way to call as the user (BENCH_SEC_CALLER=$CALLER_MODE)"; return 1; }
  put caller_mode "$CALLER"
  local user_caller=""
  [[ $USER_TOKEN == "$TOKEN" ]] && user_caller=$USER_ID
  log "the user $USER_ID calls with $CALLER"

  BENCH_USER_TOKEN=$USER_TOKEN BENCH_CALLER_ID=$user_caller \
    run_child timeout 60 node "$BENCH_DIR/security.mjs" check --base "$URL" --out "$WORK" ||
    { put error "the checks of the setup failed (see above)"; return 1; }

  export BENCH_IDS_FILE="$WORK/ids.txt" BENCH_NUMBERS_FILE="$WORK/numbers.txt" BENCH_RUN_ID=$$
  local r op script
  for (( r = 1; r <= ROUNDS; r++ )); do
    for op in get query; do
      script="$BENCH_DIR/get_by_id.lua"
      [[ $op == query ]] && script="$BENCH_DIR/query.lua"
      wait_idle "${op}_$r"
      # Admin first in odd rounds, user first in even ones, so a drift of the machine's load
      # over the run weighs on both alike.
      if (( r % 2 )); then
        measure "${op}_admin_$r" "$script" BENCH_TOKEN="$TOKEN" BENCH_CALLER_ID=
        measure "${op}_user_$r" "$script" BENCH_TOKEN="$USER_TOKEN" BENCH_CALLER_ID="$user_caller"
      else
        measure "${op}_user_$r" "$script" BENCH_TOKEN="$USER_TOKEN" BENCH_CALLER_ID="$user_caller"
        measure "${op}_admin_$r" "$script" BENCH_TOKEN="$TOKEN" BENCH_CALLER_ID=
      fi
    done
  done
  if [[ $LIST == 1 ]]; then
    # Not part of the target: no selective filter, so the row condition decides how many rows
    # SQLite reads to find 50 the user may see (its unit holds 1/BENCH_SEC_BUS of the table).
    measure list_admin_1 "$BENCH_DIR/security_list.lua" BENCH_TOKEN="$TOKEN" BENCH_CALLER_ID=
    measure list_user_1 "$BENCH_DIR/security_list.lua" BENCH_TOKEN="$USER_TOKEN" BENCH_CALLER_ID="$user_caller"
  fi
  if [[ $IMPERSONATION == 1 && -z $user_caller ]]; then
    log "impersonation: the user's token, then the admin's token with MSCRMCallerID of the user"
    measure imp_token "$BENCH_DIR/get_by_id.lua" BENCH_TOKEN="$USER_TOKEN" BENCH_CALLER_ID=
    measure imp_get "$BENCH_DIR/get_by_id.lua" BENCH_TOKEN="$TOKEN" BENCH_CALLER_ID="$USER_ID"
  fi
  if [[ $MANY == 1 ]]; then
    # Not part of the target: every user reads through its own row condition (its ids are literals
    # in the SQL), so each user has its own statement text.
    log "many users: the role on every unit's default team; GET by id as one user, then as all in turn"
    if BENCH_TOKEN=$TOKEN run_child timeout 120 node "$BENCH_DIR/security.mjs" many --base "$URL" --out "$WORK"; then
      put pairs "$(wc -l <"$WORK/pairs.txt")"
      export BENCH_PAIRS_FILE="$WORK/pairs.txt"
      measure users_one "$BENCH_DIR/security_users.lua" BENCH_TOKEN="$TOKEN" BENCH_CALLER_ID= BENCH_PAIRS_LIMIT=1
      measure users_all "$BENCH_DIR/security_users.lua" BENCH_TOKEN="$TOKEN" BENCH_CALLER_ID= BENCH_PAIRS_LIMIT=0
    else
      log "warning: security.mjs many failed; no many-users runs"
    fi
  fi
  put peak_rss_kb "$(proc_kb "$SERVER_PID" VmHWM)"
  stop_server
  log "server stopped"
  if [[ $CALLGRIND == 1 ]] || { [[ $CALLGRIND == auto ]] && command -v valgrind >/dev/null &&
      command -v callgrind_control >/dev/null; }; then
    run_callgrind "$user_caller"
  fi
}

run_security || { log "security benchmark aborted"; stop_server; }
put load_after "$(cut -d' ' -f1-3 /proc/loadavg)"

node "$BENCH_DIR/security.mjs" report "$WORK" >"$WORK/report.md"
cat "$WORK/report.md"
if [[ -z $RESULTS_FILE ]]; then
  mkdir -p "$RESULTS_DIR"
  RESULTS_FILE="$RESULTS_DIR/$(date +%Y-%m-%d).md"
  [[ -e $RESULTS_FILE ]] && RESULTS_FILE="$RESULTS_DIR/$(date +%Y-%m-%d-%H%M%S).md"
fi
{
  printf '\n'
  cat "$WORK/report.md"
  printf '<details><summary>security.sh details</summary>\n\n```\n'
  cat "$WORK/setup.env" 2>/dev/null || true
  cat "$RESULTS"
  for f in "$WORK"/wrk.*.txt; do
    [[ -f $f ]] && { printf -- '--- %s\n' "${f##*/}"; cat "$f"; }
  done
  printf '```\n\n</details>\n'
} >>"$RESULTS_FILE"
log "results appended to ${RESULTS_FILE#"$ROOT"/}"
