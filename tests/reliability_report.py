"""Counters for `make reliability`: tests record what they injected and what they checked.

Tests call `record("faults_injected", 3)`; when COURIER_RELIABILITY_REPORT names a file, each call
appends a JSON line to it, and `python -m tests.reliability_report FILE` prints the totals.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

METRICS = ("faults_injected", "runs_recovered", "rows_lost", "rows_duplicated", "bad_inputs_tried",
           "tracebacks_seen", "simulations_run", "injection_inputs_tried", "canary_changes")
MUST_BE_ZERO = ("rows_lost", "rows_duplicated", "tracebacks_seen", "canary_changes")
REPORT_ENV = "COURIER_RELIABILITY_REPORT"


def record(metric: str, count: int = 1) -> None:
    assert metric in METRICS, metric
    target = os.environ.get(REPORT_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"metric": metric, "count": count}) + "\n")


def summarize(path: Path) -> int:
    totals: Counter = Counter({metric: 0 for metric in METRICS})
    if path.exists():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            totals[entry["metric"]] += entry["count"]
    print("Reliability report")
    for metric in METRICS:
        note = "  (must be 0)" if metric in MUST_BE_ZERO else ""
        print(f"  {metric.replace('_', ' '):<22} {totals[metric]:>8,}{note}")
    failed = [m for m in MUST_BE_ZERO if totals[m]]
    if failed:
        print(f"FAILED: {', '.join(failed)} not zero")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(summarize(Path(sys.argv[1])))
