"""What an operator sees: the live view of a running soak and the ``soak status`` table."""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aurora.soak.clock import SoakClock
from aurora.soak.schedule import RPO_BACKUP, Slot, rituals
from aurora.soak.state import SoakState, TaskRecord

MARK = {"pass": "[green]✅ pass[/]", "fail": "[red]❌ fail[/]"}


def slo_line(record: TaskRecord | None) -> str:
    if record is None:
        return "no SLO check yet"
    verdicts: dict[str, Any] = record.detail.get("verdicts") or {}
    if not verdicts:
        return f"[red]{record.summary}[/]"
    return "  ".join(f"{name} {'✅' if ok else '❌' if ok is False else '❔'}"
                     for name, ok in verdicts.items())


class LiveView:
    """Rich live display (implements ``aurora.soak.runner.Hooks``)."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.title = title
        self.state: SoakState | None = None
        self.clock: SoakClock | None = None
        self.current: str = "starting"
        self.recent: deque[str] = deque(maxlen=10)
        self.notes: deque[str] = deque(maxlen=4)
        self.started = time.monotonic()
        self.live = Live(get_renderable=self.render, console=console, refresh_per_second=4,
                         transient=False)

    def __enter__(self) -> LiveView:
        self.live.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.live.stop()

    def info(self, text: str) -> None:
        self.notes.append(text)

    def line(self, text: str) -> None:
        pass

    def task_started(self, slot: Slot, attempt: int, state: SoakState,
                     clock: SoakClock) -> None:
        self.state, self.clock = state, clock
        again = f" (attempt {attempt})" if attempt > 1 else ""
        self.current = f"day {slot.day} {slot.at:%H:%M} {slot.task}{again}"

    def task_finished(self, slot: Slot, record: TaskRecord, state: SoakState) -> None:
        self.state = state
        if record.task != RPO_BACKUP or not record.passed:
            self.recent.append(f"{MARK[record.status]} d{record.day} {record.scheduled:%H:%M} "
                               f"{record.task:<20} {record.summary[:90]}")
        self.current = "waiting for the next slot"

    def render(self) -> RenderableType:
        head = Table.grid(padding=(0, 2))
        head.add_column()
        head.add_column()
        state, clock = self.state, self.clock
        now: datetime | None = clock.now() if clock else None
        if state is not None:
            plan = state.plan
            day = (now - plan.t0).days + 1 if now else 1
            done = len(state.finished)
            failed = sum(1 for r in state.finished.values() if not r.passed)
            backups = len(state.records(RPO_BACKUP)) + len(state.records("backup"))
            head.add_row("soak", f"{state.soak_id} ({plan.mode}"
                         + (f", 1 day = {plan.day_seconds:g}s" if plan.day_seconds else "") + ")")
            head.add_row("soak clock", f"day {min(day, plan.days)}/{plan.days}  "
                         f"{now:%Y-%m-%d %H:%M}" if now else "-")
            head.add_row("real time", f"{time.monotonic() - self.started:.0f}s elapsed"
                         + (f", clock held {clock.stalled:.1f}s for overruns" if clock else ""))
            head.add_row("task", self.current)
            head.add_row("tasks", f"{done} done, [red]{failed} failed[/], "
                         f"{len(state.pending())} to go; {backups} verified backups")
            head.add_row("SLOs", slo_line(next(iter(reversed(state.records("slo-check"))), None)))
        else:
            head.add_row("soak", "starting…")
        parts: list[RenderableType] = [head]
        if self.recent:
            parts.append(Text.from_markup("\n".join(self.recent)))
        if self.notes:
            parts.append(Text("\n".join(self.notes), style="dim"))
        return Panel(Group(*parts), title=self.title, title_align="left")


def status_table(state: SoakState, running: bool) -> Table:
    """Schedule, what ran, what failed and what is next (periodic backups summarised)."""
    plan = state.plan
    pending = state.pending()
    next_key = pending[0].key if pending else None
    interrupted = {s.key for s in state.interrupted}
    table = Table(title=f"soak {state.soak_id}: {plan.mode}, {plan.days} day(s) from "
                        f"{plan.start_date}" + (" — RUNNING" if running else "")
                        + (" — ended" if state.ended else ""), title_justify="left")
    for column in ("day", "soak time", "task", "status", "real start", "took", "summary"):
        table.add_column(column, overflow="fold")
    for slot in rituals(state.schedule()):
        record = state.finished.get(slot.key)
        if record is not None:
            status = MARK[record.status] + (f" (attempt {record.attempt})"
                                            if record.attempt > 1 else "")
            took = f"{(record.real_end - record.real_start).total_seconds():.1f}s"
            table.add_row(str(slot.day), f"{slot.at:%m-%d %H:%M}", slot.task, status,
                          f"{record.real_start:%m-%d %H:%M:%S}", took, record.summary[:80])
            continue
        status = ("[yellow]interrupted: rerun next[/]" if slot.key in interrupted else
                  "[cyan]▶ next[/]" if slot.key == next_key else "pending")
        table.add_row(str(slot.day), f"{slot.at:%m-%d %H:%M}", slot.task, status, "", "", "")
    periodic = state.records(RPO_BACKUP)
    if periodic or plan.rpo_every_s:
        bad = sum(1 for r in periodic if not r.passed)
        table.caption = (f"periodic backups (every {plan.rpo_every_s or 0:g}s of soak clock): "
                         f"{len(periodic)} done, {bad} failed, "
                         f"{sum(1 for s in pending if s.task == RPO_BACKUP)} to go")
    return table
