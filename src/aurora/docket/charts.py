"""Each SLO's series over the window as a PNG, with matplotlib (Agg, no display).

The chart marks the objective (green, dashed) and the alert threshold (red, dotted) and
shades the side of the objective that misses it. A series without a single point of data
has no chart: ``slo_chart`` returns None and the report says "insufficient data" instead
of drawing an empty, reassuring frame. The PNG carries no timestamp or software tag, so the
same document gives the same bytes (and the same PDF) every time.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

SERIES_COLOUR = "#1f5fbf"  # the measured series; the PDF test looks for this colour
OBJECTIVE_COLOUR = "#1a7f37"
ALERT_COLOUR = "#cf222e"
MISS_SHADE = "#fbe3e4"
DPI = 120
SIZE_IN = (7.2, 2.7)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 8,
                         "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "aurora", "path.simplify": False})
    return plt


def _fmt(value: float, unit: str) -> str:
    return f"{value:g} ms" if unit == "ms" else f"{value:.0%}" if value >= 0.1 else f"{value:g}"


def line_chart(points: Sequence[tuple[float, float | None]], *, unit: str, op: str,
               objective: float, alert: dict[str, Any] | None) -> bytes | None:
    """PNG of ``points`` (unix time, value or None) against the objective and alert."""
    if not any(v is not None and math.isfinite(v) for _, v in points):
        return None
    plt = _pyplot()
    from matplotlib import dates as mdates

    times = [datetime.fromtimestamp(t, UTC) for t, _ in points]
    values = [math.nan if v is None else v for _, v in points]
    fig, ax = plt.subplots(figsize=SIZE_IN, dpi=DPI)
    try:
        ax.plot(times, values, color=SERIES_COLOUR, linewidth=1.8, label="measured",
                solid_joinstyle="round")
        ax.axhline(objective, color=OBJECTIVE_COLOUR, linestyle="--", linewidth=1.2,
                   label=f"objective {op} {_fmt(objective, unit)}")
        marks = [objective, *(v for v in values if not math.isnan(v))]
        if alert is not None:
            ax.axhline(alert["threshold"], color=ALERT_COLOUR, linestyle=":", linewidth=1.4,
                       label=f"alert {alert['name']}: {alert['op']} "
                             f"{_fmt(alert['threshold'], unit)}")
            marks.append(alert["threshold"])
        low, high = min(marks), max(marks)
        pad = (high - low) * 0.12 or abs(high) * 0.1 or 1.0
        bottom, top = low - pad, high + pad
        if unit == "ratio":
            bottom, top = max(bottom, 0.0), min(top, 1.02)
        else:
            bottom = max(bottom, 0.0)
        ax.set_ylim(bottom, top)
        # the side of the objective that misses it
        if op == ">=":
            ax.axhspan(bottom, objective, color=MISS_SHADE, zorder=0)
        else:
            ax.axhspan(objective, top, color=MISS_SHADE, zorder=0)
        if unit == "ratio":
            ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
        else:
            ax.set_ylabel("ms")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=UTC))  # type: ignore[no-untyped-call]
        ax.set_xlabel("UTC")
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.legend(loc="best", fontsize=7, frameon=False)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", metadata={"Software": None})
        return out.getvalue()
    finally:
        plt.close(fig)


def segment_points(segments: Sequence[dict[str, Any]], slo: str
                   ) -> list[tuple[float, float | None]]:
    """The gate's judged segments as a step series: each value held over its segment,
    a gap between segments (drill windows are not drawn as if measured)."""
    from aurora.wire import parse_rfc3339

    points: list[tuple[float, float | None]] = []
    for seg in segments:
        value = (seg.get("values") or {}).get(slo)
        start, end = parse_rfc3339(seg["start"]).timestamp(), parse_rfc3339(seg["end"]).timestamp()
        points += [(start, value), (end, value), (end, None)]
    return points
