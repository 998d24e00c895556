# Shell functions shared by the benchmarks over real processes (scripts/bench-server,
# scripts/bench-replicas). Sourced after the caller has set: work (a temporary directory),
# dynaseal, loadgen, results (a file), failures (a count), pids (an array of processes to stop
# at exit) and the CPU placement prefixes on_client / on_proxy (arrays, possibly empty).

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# wait_line FILE PATTERN: until FILE has a line matching PATTERN (10 s); prints that line.
wait_line() {
  local i
  for i in $(seq 200); do
    if grep -q -- "$2" "$1" 2>/dev/null; then grep -m1 -- "$2" "$1"; return 0; fi
    sleep 0.05
  done
  echo "bench: timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

# stop PID: SIGTERM, wait, and forget it (so cleanup never signals a recycled PID).
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  forget "$1"
}
forget() {
  local p kept=()
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
  pids=("${kept[@]}")
}

# start_engine NAME ARGS...: sets engine_pid and engine_port.
start_engine() {
  local name=$1; shift
  "${on_client[@]}" "$dynaseal" engine --listen 127.0.0.1:0 --threads 1 "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  engine_pid=$!
  pids+=("$engine_pid")
  engine_port=$(wait_line "$work/$name.out" "engine listening on" | sed 's/.*://')
}

free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 12000))
    [[ -z $(ss -Htan "sport = :$p") ]] && { echo "$p"; return 0; }
  done
  return 1
}

# mint N FILE: N distinct single-use keys, one per line (two minting processes in parallel).
mint() {
  local half=$(( ($1 + 1) / 2 ))
  local args=(key mint --key "$work/acme.jwk" --iss acme --aud llm-1 --sub bench --model demo
    --max-tokens 32 --ttl 1800 --count "$half")
  "$dynaseal" "${args[@]}" >"$2.a" &
  "$dynaseal" "${args[@]}" >"$2.b"
  wait $!
  cat "$2.a" "$2.b" >"$2"
  rm -f "$2.a" "$2.b"
}

# load NAME ARGS...: one loadgen run on the client CPU; its RESULT line goes to $results.
load() {
  local name=$1; shift
  local rc=0
  "${on_client[@]}" "$loadgen" --name "$name" "$@" >"$work/$name.result" || rc=$?
  cat "$work/$name.result" >>"$results"
  if [[ $rc -ne 0 ]]; then
    echo "bench: run '$name' FAILED (non-2xx answers, errors or too few keys)" >&2
    failures=$((failures + 1))
  fi
}

# get NAME KEY: a field of a run's RESULT line.
get() {
  awk -v n="name=$1" -v k="$2" '$2 == n { for (i = 3; i <= NF; i++) { split($i, kv, "=");
    if (kv[1] == k) { print kv[2]; exit } } }' "$results"
}

# cpu_ticks PID: user + system CPU time of a process, all threads, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

ms() { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
