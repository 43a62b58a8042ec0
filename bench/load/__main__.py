"""python -m bench.load --requests N --concurrency C --invoices M [--database-url URL]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __doc__ as DOC
from . import run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=DOC.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--invoices", type=int, default=5_000)
    parser.add_argument("--database-url", default=None, help="an empty database (default: a new SQLite file)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds the client mix may take at most")
    parser.add_argument("--reads-only", action="store_true", help="only invoice lists and single invoices")
    parser.add_argument("--output", default=None, help="also write the result table to this file")
    args = parser.parse_args(argv)
    result = run(args.requests, args.concurrency, args.invoices, args.database_url, timeout=args.timeout,
                 reads_only=args.reads_only)
    table = result.table()
    print(table)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(table + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
