#!/usr/bin/env bash
# First benchmark: delivered messages per second, latency percentiles, server CPU per message and
# RSS, for 100 and 1000 clients on the simulator feed at a high tick rate.
# Builds release, pins the agent to core 0 and the load generator to core 1, runs each case
# RUNS times (default 3) and appends one JSON line per run to bench-results/simulator.jsonl.
# Usage: Benchmarks/run-simulator-cases.sh [case ...]
#   (cases: light-100 heavy-100 light-1000 heavy-1000 stall-20, and over the local JSON-RPC socket
#    ipc-light ipc-heavy ipc-stall; default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
duration=${DURATION:-10}
port=${PORT:-18765}
swift build -c release --product openalgo-agent >/dev/null
swift build -c release --product oa-bench >/dev/null
bin=$(swift build -c release --show-bin-path)
mkdir -p bench-results
out=bench-results/simulator.jsonl
export OPENALGO_API_KEY=${OPENALGO_API_KEY:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}

# Runs a command pinned to one core where taskset and a second core exist.
pin() {
    if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then taskset -c "$@"; else "${@:2}"; fi
}

run_case() {
    local name=$1 clients=$2 symbols=$3 rate=$4 mode=${5:-quote} stalled=${6:-0} transport=${7:-ws}
    for run in $(seq 1 "$runs"); do
        local home
        home=$(mktemp -d)
        local socket=$home/agent.sock transport_args=()
        [ "$transport" = ipc ] && transport_args=(--ipc-socket "$socket")
        (
            export HOME=$home OPENALGO_BROKER_SIMULATOR_TICKS_PER_SECOND=$rate OPENALGO_LOG_LEVEL=warning
            if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
                exec taskset -c 0 "$bin/openalgo-agent" --port "$port" --ipc-socket "$socket"
            fi
            exec "$bin/openalgo-agent" --port "$port" --ipc-socket "$socket"
        ) &
        local agent=$!
        sleep 1
        pin 1 "$bin/oa-bench" --port "$port" --pid "$agent" --name "$name" --clients "$clients" --symbols "$symbols" \
            --mode "$mode" --stalled "$stalled" --feed-rate "$rate" --warmup 3 --duration "$duration" "${transport_args[@]}" --json |
            tee -a "$out"
        kill "$agent"
        wait "$agent" || true
        rm -rf "$home"
    done
}

cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(light-100 heavy-100 light-1000 heavy-1000 stall-20 ipc-light ipc-heavy ipc-stall)
for name in "${cases[@]}"; do
    case $name in
    light-100) run_case light-100 100 10 10 ;;      # 100 ticks/s in, 10 000 frames/s out
    heavy-100) run_case heavy-100 100 10 100 ;;     # 1 000 ticks/s in, 100 000 frames/s out
    light-1000) run_case light-1000 1000 10 1 ;;    # 10 ticks/s in, 10 000 frames/s out
    heavy-1000) run_case heavy-1000 1000 10 10 ;;   # 100 ticks/s in, 100 000 frames/s out
    stall-20) run_case stall-20 21 20 200 depth 1 ;;  # 20 Depth readers and 1 that stops reading; 80 000 frames/s out
    ipc-light) run_case ipc-light 10 10 100 quote 0 ipc ;;   # 10 local clients, 1 000 ticks/s in, 10 000 messages/s out
    ipc-heavy) run_case ipc-heavy 10 10 1000 quote 0 ipc ;;  # 10 local clients, 10 000 ticks/s in, 100 000 messages/s out
    ipc-stall) run_case ipc-stall 5 20 200 depth 1 ipc ;;    # 4 Depth readers and 1 that stops reading; 16 000 messages/s out
    *) echo "unknown case $name" >&2; exit 64 ;;
    esac
done
