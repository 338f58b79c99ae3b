#!/usr/bin/env bash
# The benchmark cases of issue 7 against openalgo-agent fed through the ZeroMQ bus: oa-bench
# publishes ticks in OpenAlgo's adapter format (the path OpenAlgo's Python server takes ticks on)
# and measures what the agent delivers to its clients, its CPU per frame and its memory.
#
# Usage: Benchmarks/run-cases.sh [--smoke] [case ...]
#   cases: light heavy ltp-wide depth stall connect idle-memory (default: all)
#   RUNS=3          runs per case (median and range: Benchmarks/summarize.py bench-results/cases.jsonl)
#   DURATION=       seconds measured per run (default: the case's, 10 s; stall 20 s)
#   AGENT_CPUS=0    cores the agent runs on (taskset -c; e.g. 0,1 for an agent with several loops)
#   BENCH_CPUS=1    cores oa-bench runs on
#   LOOPS=          oa-bench's client event loops (default: its own, the machine's cores)
#   AGENT_BIN=      the agent binary to measure (default: this checkout's build)
#   COMPARE=1       also start a second agent (COMPARE_AGENT=path, default the same binary), fed the
#                   same ticks and loaded the same way; one result line per agent. It runs on
#                   COMPARE_CPUS (default AGENT_CPUS): two agents on one core share it by threads, so
#                   an agent with more busy threads gets more of it
#   OUT=bench-results/cases.jsonl   where the JSON lines are appended
#   Other OPENALGO_* variables in the environment reach the agent (its configuration keys).
#
# Builds release. With --smoke it instead runs every case once for about a second with a few
# clients on the debug build (`swift build`, as CI has built it) and fails only on functional
# problems: nothing delivered, a client refused, oa-bench failing or the agent exiting. Timings are
# never checked.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
if [ "${1:-}" = "--smoke" ]; then
    smoke=1
    shift
fi
all_cases=(light heavy ltp-wide depth stall connect idle-memory)
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=("${all_cases[@]}")

# Builds the agent and oa-bench (quietly unless the build fails).
build() {
    local product log
    log=$(mktemp)
    for product in openalgo-agent oa-bench; do
        if ! swift build "$@" --product "$product" >"$log" 2>&1; then
            cat "$log"
            rm -f "$log"
            exit 1
        fi
    done
    rm -f "$log"
}

if [ "$smoke" = 1 ]; then
    runs=1
    build
    bin=$(swift build --show-bin-path)
    out=${OUT:-/dev/null}
else
    runs=${RUNS:-3}
    build -c release
    bin=$(swift build -c release --show-bin-path)
    mkdir -p bench-results
    out=${OUT:-bench-results/cases.jsonl}
fi
agent_bin=${AGENT_BIN:-$bin/openalgo-agent}
compare_agent=${COMPARE_AGENT:-$bin/openalgo-agent}
agent_cpus=${AGENT_CPUS:-0}
compare_cpus=${COMPARE_CPUS:-$agent_cpus}
bench_cpus=${BENCH_CPUS:-1}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export OPENALGO_API_KEY=${OPENALGO_API_KEY:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}

# Two servers of 1000 clients each, plus the generator's own sockets, need more than the usual
# soft limit of 1024 descriptors; the agent and oa-bench inherit this one.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 2200 ]; then
    echo "warning: ulimit -n is $(ulimit -n); 1000-client cases need about 1100 descriptors per server" >&2
fi

# Pinning keeps the agent and the generator off each other's cores; the smoke shares whatever CI has.
can_pin=0
if [ "$smoke" = 0 ] && command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then can_pin=1; fi

# The command prefix that runs a program on the given cores, when pinning.
pinned() {
    [ "$can_pin" = 1 ] && echo "taskset -c $1"
    return 0
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

wait_for_port() {
    local port=$1
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "the agent did not listen on port $port" >&2
    return 1
}

agents=()
homes=()
cleanup() {
    local pid
    for pid in "${agents[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${agents[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "${homes[@]}"
    agents=()
    homes=()
}
trap cleanup EXIT

# Starts an agent reading the bus at $2 in connect mode on WebSocket port $3, on cores $4; sets
# $started_pid.
start_agent() {
    local binary=$1 endpoint=$2 port=$3 cpus=$4 home
    home=$(mktemp -d)
    homes+=("$home")
    (
        export HOME=$home XDG_CONFIG_HOME=$home/config OPENALGO_LOG_LEVEL=warning
        # Above the 1000 clients of the largest cases, so the limit never refuses a benchmark client.
        export OPENALGO_MAX_CLIENTS=5000
        export OPENALGO_BROKER_ZMQ_ENDPOINT=$endpoint OPENALGO_BROKER_ZMQ_SOCKET_MODE=connect
        # The smoke's stall case lasts a few seconds; the stalled client should still be closed.
        [ "$smoke" = 1 ] && export OPENALGO_UNWRITABLE_DEADLINE=1
        # shellcheck disable=SC2046
        exec $(pinned "$cpus") "$binary" serve --port "$port" --ipc-socket "$home/agent.sock" --broker zmq --no-systemd
    ) &
    started_pid=$!
    agents+=("$started_pid")
    wait_for_port "$port"
}

# oa-bench's options for a case in the smoke: a few clients, about a second measured.
smoke_options() {
    local options=(--warmup 0.5 --duration 1 --drain 1)
    case $1 in
    light | heavy | depth) options+=(--clients 10) ;;
    ltp-wide) options+=(--clients 50) ;;
    stall) options+=(--clients 5 --duration 3) ;;
    connect) options=(--clients 50) ;;
    idle-memory) options=(--clients 50 --warmup 0.5) ;;
    esac
    echo "${options[@]}"
}

passed=0
failed=0
for name in "${cases[@]}"; do
    case " ${all_cases[*]} " in
    *" $name "*) ;;
    *) echo "unknown case $name (cases: ${all_cases[*]})" >&2; exit 64 ;;
    esac
    for run in $(seq 1 "$runs"); do
        port=$(free_port)
        endpoint=tcp://127.0.0.1:$(free_port)
        options=(--case "$name" --commit "$commit" --zmq-endpoint "$endpoint")
        [ -n "${DURATION:-}" ] && [ "$smoke" = 0 ] && options+=(--duration "$DURATION")
        [ -n "${LOOPS:-}" ] && options+=(--loops "$LOOPS")
        [ "$smoke" = 1 ] && read -r -a extra <<<"$(smoke_options "$name")" && options+=("${extra[@]}")
        start_agent "$agent_bin" "$endpoint" "$port" "$agent_cpus"
        options+=(--port "$port" --pid "$started_pid")
        if [ "${COMPARE:-0}" = 1 ]; then
            compare_port=$(free_port)
            start_agent "$compare_agent" "$endpoint" "$compare_port" "$compare_cpus"
            options+=(--compare-port "$compare_port" --compare-pid "$started_pid")
        fi
        # The agent's RSS with no clients, for idle-memory, once it has settled.
        sleep 1
        echo "==> $name run $run/$runs"
        log=$(mktemp)
        status=0
        # shellcheck disable=SC2046
        $(pinned "$bench_cpus") "$bin/oa-bench" "${options[@]}" >"$log" 2>&1 || status=$?
        grep -v '^{' "$log" || true
        grep '^{' "$log" >>"$out" || true
        rm -f "$log"
        for pid in "${agents[@]}"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "==> the agent (pid $pid) exited during the run"
                status=70
            fi
        done
        if [ "$status" = 0 ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "==> $name run $run failed (status $status)"
        fi
        cleanup
    done
done
if [ "$smoke" = 1 ]; then
    echo "bench smoke: $passed passed, $failed failed"
else
    echo "==> results appended to $out"
fi
[ "$failed" = 0 ]
