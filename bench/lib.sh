# bench/lib.sh — shell helpers shared by bench/webapi.sh and bench/bulk.sh (sourced, never run).
#
# The caller sets, before sourcing: ROOT, BENCH_DIR, BIN (the tributary binary), TMP_PARENT, and
# exports BENCH_CLIENT_ID / BENCH_CLIENT_SECRET (the bootstrap app user). It then calls
# `bench_workdir NAME`, which creates WORK (a temp dir under TMP_PARENT) and RESULTS (the key=value
# file `put` appends to) and installs the EXIT/INT/TERM traps that stop the server and delete WORK.
#
# Provides: log, die, to_seconds, put, alive, proc_kb, run_child, start_server, stop_server,
# get_token, run_wrk (reads THREADS, CONNECTIONS, DURATION, DUR_S, WARMUP from the caller) and
# put_machine (date, CPU, memory, OS, git revision and file system of WORK, sets FSTYPE).

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

to_seconds() {  # wrk-style duration (10, 10s, 2m, 500ms) -> whole seconds, at least 1
  local d=$1 n
  case $d in
    *ms) n=1 ;;
    *s) n=${d%s} ;;
    *m) n=$(( ${d%m} * 60 )) ;;
    *h) n=$(( ${d%h} * 3600 )) ;;
    *) n=$d ;;
  esac
  [[ $n =~ ^[0-9]+$ ]] || die "bad duration '$d'"
  (( n < 1 )) && n=1
  echo "$n"
}

SERVER_PID=""
SERVER_FD=""
DRAIN_PID=""
CHILD_PID=""
WORK=""
RESULTS=/dev/null

put() { printf '%s=%s\n' "$1" "$2" >>"$RESULTS"; }  # key=value for report.mjs (last one wins)

# alive PID: true while the process exists and is not a zombie. (No `read` builtin here: it fails
# while bash is exiting from a signal trap, which is exactly when cleanup() needs this.)
alive() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }  # after "pid (comm) ": the state letter
  [[ -n $st && ${st:0:1} != Z ]]
}

# proc_kb PID FIELD -> value in kB from /proc/PID/status (VmRSS, VmHWM), or empty.
proc_kb() {
  local k v _
  { while read -r k v _; do
      if [[ $k == "$2:" ]]; then echo "$v"; return 0; fi
    done </proc/"$1"/status; } 2>/dev/null
  echo ""
}

stop_server() {
  if [[ -n $SERVER_PID ]]; then
    if alive "$SERVER_PID"; then
      kill -TERM "$SERVER_PID" 2>/dev/null || true
      local i
      for (( i = 0; i < 100; i++ )); do alive "$SERVER_PID" || break; sleep 0.1; done
      if alive "$SERVER_PID"; then
        log "server $SERVER_PID did not stop within 10 s of SIGTERM; killing it"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
      fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
  if [[ -n $DRAIN_PID ]]; then
    kill "$DRAIN_PID" 2>/dev/null || true
    wait "$DRAIN_PID" 2>/dev/null || true
    DRAIN_PID=""
  fi
  if [[ -n $SERVER_FD ]]; then
    exec {SERVER_FD}<&-
    SERVER_FD=""
  fi
}

# run_child CMD...: runs CMD in the background and waits for it, so that INT/TERM are handled at
# once (bash defers traps while a foreground child runs); cleanup() stops it if we are interrupted.
run_child() {
  local rc=0
  "$@" &
  CHILD_PID=$!
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $CHILD_PID ]]; then
    kill -TERM "$CHILD_PID" 2>/dev/null || true
    wait "$CHILD_PID" 2>/dev/null || true
  fi
  stop_server
  rm -rf "$WORK"
  exit "$rc"
}

# bench_workdir NAME: creates WORK=$TMP_PARENT/tributary-NAME-XXXXXX and an empty RESULTS file in
# it, and installs the traps (cleanup on exit, also on Ctrl-C and SIGTERM).
bench_workdir() {
  WORK=$(mktemp -d "$TMP_PARENT/tributary-$1-XXXXXX")
  RESULTS="$WORK/results.env"
  : >"$RESULTS"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server DATA_DIR LOGFILE READY_TIMEOUT_S
# Starts the server on a free loopback port and waits for "listening on". Sets SERVER_PID, PORT,
# URL and READY_US (microseconds from launch to the "listening on" line). Returns 1 on failure.
start_server() {
  local data=$1 logf=$2 timeout_s=$3
  PORT=$(free_port)
  URL="http://127.0.0.1:$PORT"
  local fifo="$WORK/server.$PORT.fifo"
  rm -f "$fifo"
  mkfifo "$fifo"
  # Held read-write so the server's writes never hit a reader-less FIFO (no SIGPIPE, no EOF).
  exec {SERVER_FD}<>"$fifo"
  local t0=$EPOCHREALTIME
  TRIBUTARY_BOOTSTRAP_CLIENT_ID=$BENCH_CLIENT_ID TRIBUTARY_BOOTSTRAP_CLIENT_SECRET=$BENCH_CLIENT_SECRET \
    "$BIN" serve --data "$data" --listen "127.0.0.1:$PORT" >"$fifo" 2>&1 </dev/null {SERVER_FD}<&- &
  SERVER_PID=$!
  local deadline=$(( ${t0%.*} + timeout_s )) line buf=""
  READY_US=""
  while :; do
    if IFS= read -r -t 0.25 -u "$SERVER_FD" line; then
      line=$buf$line
      buf=""
      printf '%s\n' "$line" >>"$logf"
      if [[ $line == *"listening on"* ]]; then
        local t1=$EPOCHREALTIME
        READY_US=$(( 10#${t1/./} - 10#${t0/./} ))
        break
      fi
    else
      buf+=$line  # a partial line read before the timeout
      if ! alive "$SERVER_PID"; then
        [[ -n $buf ]] && printf '%s\n' "$buf" >>"$logf"
        log "server exited before printing 'listening on'; last lines of its output:"
        tail -n 20 "$logf" >&2 || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        stop_server
        return 1
      fi
      if (( ${EPOCHREALTIME%.*} >= deadline )); then
        log "server did not print 'listening on' within ${timeout_s}s (is the line flushed?)"
        tail -n 20 "$logf" >&2 || true
        stop_server
        return 1
      fi
    fi
  done
  cat <&"$SERVER_FD" >>"$logf" &
  DRAIN_PID=$!
  return 0
}

get_token() {
  local resp
  resp=$(curl -sS --max-time 10 -X POST "$URL/oauth2/v2.0/token" \
    -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode "client_id=$BENCH_CLIENT_ID" \
    --data-urlencode "client_secret=$BENCH_CLIENT_SECRET") || return 1
  node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      try { const t = JSON.parse(s).access_token; if (!t) throw 0; process.stdout.write(t); }
      catch { console.error("token response: " + s.slice(0, 300)); process.exit(1); }
    });' <<<"$resp"
}


# run_wrk NAME SCRIPT PATH : warm-up run, then the measured run; results go to $RESULTS as NAME_*.
run_wrk() {
  local name=$1 script=$2 path=$3 kv
  local res="$WORK/wrk.$name.result" txt="$WORK/wrk.$name.txt"
  local common=(-t"$THREADS" -c"$CONNECTIONS" --timeout 5s)
  if [[ -n $WARMUP ]]; then
    log "$name: warm-up $WARMUP"
    # Its own run id, so the keys create.lua makes do not repeat in the measured run (a unique
    # alternate key on accountnumber would answer the repeats with 412).
    BENCH_RUN_ID="${BENCH_RUN_ID:-$$}w" BENCH_RESULT_FILE=/dev/null run_child timeout $(( $(to_seconds "$WARMUP") + 30 )) \
      wrk "${common[@]}" -d"$WARMUP" -s "$script" "$URL$path" >/dev/null 2>&1 || true
  fi
  log "$name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $URL$path"
  : >"$res"
  BENCH_RESULT_FILE=$res run_child timeout $(( DUR_S + 30 )) \
    wrk "${common[@]}" -d"$DURATION" --latency -s "$script" "$URL$path" >"$txt" 2>&1 || true
  grep -E 'Requests/sec|^ +99%|Non-2xx|Socket errors' "$txt" | sed 's/^/    /' >&2 || true
  if [[ ! -s $res ]]; then
    log "$name: wrk produced no result; output:"
    sed 's/^/    /' "$txt" >&2
    put "${name}_failed" 1
    return 0
  fi
  for kv in $(tail -n 1 "$res"); do put "${name}_${kv%%=*}" "${kv#*=}"; done
}

# put_machine: records the machine, the revision and the file system of WORK (sets FSTYPE).
put_machine() {
  put date "$(date -u '+%Y-%m-%d %H:%M UTC')"
  put cpus "$(nproc)"
  put cpu_model "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  put mem_gib "$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
  put os "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}") / Linux $(uname -r)"
  put git "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(
    [[ -n $(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1) ]] && echo ' (uncommitted changes)')"
  FSTYPE=$(df --output=fstype "$WORK" 2>/dev/null | tail -n 1 || stat -f -c %T "$WORK")
  put fs "$FSTYPE ($TMP_PARENT)"
}
