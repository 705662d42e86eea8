"""`make reliability`'s table: python -m tests.reliability.table FILE

Reads the tries recorded by tests.reliability.plugin and prints one row per fault, as
"survived / tried". Exits 1 unless every row was tried and every try survived."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from pathlib import Path

# Every row `make reliability` must fill, in the order of the table.
ROWS = [
    "power cuts at every flash operation of an update",
    "two power cuts: during an update and during its recovery",
    "power cuts at sampled operations of a full-size (1.5 MB) update",
    "power cuts while the application writes its own files",
    "power cuts during a compressed update",
    "power cuts at every flash operation of an application switch",
    "power cuts at every flash operation of an application rollback",
    "power cuts at every flash operation of an update (esp32s3)",
    "power cuts at every flash operation of an application switch and rollback (esp32s3)",
    "power cuts at every flash operation of an update (esp32c3)",
    "power cuts at every flash operation of an application switch and rollback (esp32c3)",
    "hostile job documents",
    "connections dropped during downloads",
    "connections dropped during compressed downloads",
    "broker and jobs service restarts during a job",
    "non-FOTA jobs queued ahead of an update",
    "cross-thing attempts and bad URLs",
    "names",
    "slow and stalling MCUs",
    "lying time servers",
    "misbehaving peers",
]


def tally(lines: list[str]) -> "OrderedDict[str, list[int]]":
    rows: OrderedDict[str, list[int]] = OrderedDict((r, [0, 0]) for r in ROWS)
    for line in lines:
        if not line.strip():
            continue
        rec = json.loads(line)
        counts = rows.setdefault(rec["row"], [0, 0])
        counts[1] += 1
        counts[0] += 1 if rec["survived"] else 0
    return rows


def render(rows: "OrderedDict[str, list[int]]") -> str:
    width = max(len(r) for r in rows)
    out = [f"{'fault':<{width}}  survived / tried", f"{'-' * width}  ----------------"]
    for name, (ok, n) in rows.items():
        mark = "" if n and ok == n else "   <- " + ("never tried" if not n else "NOT WHOLE")
        out.append(f"{name:<{width}}  {ok:>8} / {n:<5}{mark}")
    return "\n".join(out)


def failures(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.strip():
            rec = json.loads(line)
            if not rec["survived"]:
                out.append(f"{rec['row']}: {rec['test']}: {rec['detail']}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.reliability.table FILE", file=sys.stderr)
        return 2
    path = Path(argv[0])
    lines = path.read_text().splitlines() if path.exists() else []
    rows = tally(lines)
    print(render(rows))
    bad = failures(lines)
    for line in bad[:20]:
        print("  " + line)
    whole = all(n and ok == n for ok, n in rows.values())
    return 0 if whole and not bad else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
