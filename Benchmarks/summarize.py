#!/usr/bin/env python3
"""Summarises oa-bench JSON lines as Markdown tables: the median and, in brackets, the range of
each metric over the runs of a case (and server, when one run measured two).

Usage: Benchmarks/summarize.py [FILE ...]   (default: bench-results/cases.jsonl)
Reads the lines of Benchmarks/run-cases.sh and of Benchmarks/run-simulator-cases.sh alike.
"""

import json
import statistics
import sys
from collections import OrderedDict

# (label, digits, keys to try in order: older lines name some metrics differently)
STREAM_METRICS = [
    ("delivered frames/s", 0, ["delivered_per_second"]),
    ("ratio", 4, ["ratio"]),
    ("p50 ms", 2, ["latency_ms_p50"]),
    ("p90 ms", 2, ["latency_ms_p90"]),
    ("p99 ms", 2, ["latency_ms_p99"]),
    ("p99.9 ms", 2, ["latency_ms_p999"]),
    ("max ms", 2, ["latency_ms_max"]),
    ("server CPU %", 1, ["server_cpu_percent"]),
    ("CPU µs/frame", 2, ["server_cpu_us_per_frame", "server_cpu_us_per_message"]),
    ("RSS MiB", 1, ["server_rss_mib"]),
    ("generator CPU %", 1, ["generator_cpu_percent"]),
    ("connect s", 2, ["connect_seconds"]),
]
STALL_METRICS = [
    ("readers' ratio", 4, ["ratio"]),
    ("lowest reader's ratio", 4, ["min_client_ratio"]),
    ("stalled closed", 0, ["stalled_closed"]),
    ("closed after s", 1, ["stalled_closed_after_s"]),
    ("RSS min MiB", 1, ["server_rss_min_mib"]),
    ("RSS max MiB", 1, ["server_rss_max_mib"]),
]
CONNECT_METRICS = [
    ("connect s", 3, ["connect_seconds"]),
    ("clients/s", 0, ["connect_clients_per_second"]),
    ("server CPU %", 1, ["server_cpu_percent"]),
    ("RSS MiB", 1, ["server_rss_mib"]),
    ("idle RSS, no clients MiB", 2, ["idle_rss_base_mib"]),
    ("idle RSS, clients MiB", 2, ["idle_rss_clients_mib"]),
    ("KiB per idle client", 2, ["idle_kib_per_client"]),
]


def value(result, keys):
    for key in keys:
        if result.get(key) is not None:
            return result[key]
    return None


def cell(results, digits, keys):
    values = [v for v in (value(r, keys) for r in results) if v is not None]
    if not values:
        return "–"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def describe(first):
    if first.get("delivered_per_second") is None:
        return f"`{first['case']}` ({first['clients']} clients)"
    stalled = f", {first['stalled_clients']} stalled" if first.get("stalled_clients") else ""
    rate = f", {first['tick_rate']:.0f} ticks/s" if first.get("tick_rate") is not None else ""
    return f"`{first['case']}` ({first['clients']} clients{stalled} × {first['symbols_per_client']} {first['mode']}{rate})"


def table(title, groups, metrics, with_server):
    if not groups:
        return
    print(f"**{title}**\n")
    header = ["case"] + (["server"] if with_server else []) + ["runs"] + [label for label, _, _ in metrics]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for (_, server), results in groups.items():
        cells = [describe(results[0])] + ([server] if with_server else []) + [str(len(results))]
        cells += [cell(results, digits, keys) for _, digits, keys in metrics]
        print("| " + " | ".join(cells) + " |")
    print()


def main(paths):
    groups = OrderedDict()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line.startswith("{"):
                    result = json.loads(line)
                    groups.setdefault((result["case"], result.get("server", "primary")), []).append(result)
    with_server = len({server for _, server in groups}) > 1
    streaming = OrderedDict((k, v) for k, v in groups.items() if v[0].get("delivered_per_second") is not None)
    stalled = OrderedDict((k, v) for k, v in streaming.items() if v[0].get("stalled_clients") and "stalled_closed" in v[0])
    others = OrderedDict((k, v) for k, v in groups.items() if v[0].get("delivered_per_second") is None)
    table("Streaming cases", streaming, STREAM_METRICS, with_server)
    table("Slow consumers", stalled, STALL_METRICS, with_server)
    table("Connections and idle memory", others, CONNECT_METRICS, with_server)


if __name__ == "__main__":
    main(sys.argv[1:] or ["bench-results/cases.jsonl"])
