#!/usr/bin/env python3
"""Summarises oa-bench JSON lines as a Markdown table: median and range per case and metric."""

import json
import statistics
import sys
from collections import OrderedDict

METRICS = [
    ("delivered_per_second", "delivered msg/s", 0),
    ("latency_ms_p50", "p50 ms", 2),
    ("latency_ms_p99", "p99 ms", 2),
    ("latency_ms_p999", "p99.9 ms", 2),
    ("latency_ms_max", "max ms", 2),
    ("server_cpu_percent", "server CPU %", 1),
    ("server_cpu_us_per_message", "CPU µs/msg", 2),
    ("server_rss_mib", "RSS MiB", 1),
    ("connect_seconds", "connect s", 2),
]


def main(paths):
    runs = OrderedDict()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line.startswith("{"):
                    result = json.loads(line)
                    runs.setdefault(result["case"], []).append(result)
    header = ["case", "runs"] + [label for _, label, _ in METRICS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for case, results in runs.items():
        first = results[0]
        stalled = f", {first['stalled_clients']} stalled" if first.get("stalled_clients") else ""
        cells = [f"`{case}` ({first['clients']} clients{stalled} × {first['symbols_per_client']} {first['mode']})", str(len(results))]
        for key, _, digits in METRICS:
            values = [r[key] for r in results if r.get(key) is not None]
            if not values:
                cells.append("–")
                continue
            median = statistics.median(values)
            cells.append(f"{median:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["bench-results/simulator.jsonl"])
