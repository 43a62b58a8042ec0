"""`make bench`: every benchmark with its same-run baseline, printed as one table
and written to bench-results/latest.md. BENCH_SCALE scales the sizes down for a
quick look (e.g. BENCH_SCALE=0.1)."""
from __future__ import annotations

import os
import platform
import sys
from datetime import datetime
from pathlib import Path

from .common import Report


def main() -> int:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    report = Report()
    from . import billing, documents, dunning, invoices, load

    suites = [("billing", lambda: billing.run(report, int(100_000 * scale))),
              ("invoices", lambda: invoices.run(report, int(1_000_000 * scale))),
              ("dunning", lambda: dunning.run(report)),
              ("documents", lambda: documents.run(report)),
              ("load", lambda: load.bench(report, int(1_000_000 * scale)))]
    for name, suite in suites:
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        suite()
    table = report.table()
    print("\n" + table)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(f"Kassa benchmarks, {datetime.now():%Y-%m-%d %H:%M}, "
                                   f"{platform.machine()} × {os.cpu_count()} cores, scale {scale}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
