"""Tables of canary measurements for the terminal (status, replay, dry run).

Rows are measurement records as the ledger holds them (``Measurement.ledger_data()``), so
``aurora canary status`` (read back from the ledger) and ``replay`` print the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table

from aurora.terminal import shown_markup as shown

MARKS = {"pass": "✔", "fail": "✘", "not_enough_data": "…", "error": "!"}


def _num(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.3g}" if math.isfinite(x) else "—"
    return str(x)


def measurement_table(rows: Iterable[Mapping[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("", "comparison", "pairs", "worse/better", "evidence (fail)", "rule",
                "decision", "why"):
        table.add_column(col, overflow="fold")
    for m in rows:
        detail = m.get("detail") or {}
        gate = str(m["comparison"]).startswith("gate:")
        rule = (f"{detail.get('fails_when', '')} {_num(m['threshold'])}" if gate
                else f"fail ≥ {_num(m['threshold'])}, pass ≥ "
                     f"{_num(detail.get('log_pass_threshold'))}")
        evidence = (_num(m["value"]) if gate else
                    f"{_num(m['value'])} / pass {_num(detail.get('log_pass_evidence'))}")
        table.add_row(MARKS.get(str(m["decision"]), "?"), shown(str(m["comparison"])),
                      "" if gate else str(m["sample_size"]),
                      "" if gate else f"{detail.get('pairs_canary_worse', 0)}/"
                                      f"{detail.get('pairs_canary_better', 0)}",
                      evidence, rule, str(m["decision"]), shown(str(detail.get("reason", ""))
                                                              if not gate else m["query"]))
    return table
