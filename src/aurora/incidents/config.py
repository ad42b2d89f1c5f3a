"""``config/incidents.json``: severity levels, their response SLAs and the alert → SEV mapping.

Pure apart from ``load_incidents_config``. The mapping is an ordered list of rules in the
style of Alertmanager's ``match``/``match_re`` (regexes are anchored at both ends, as in
Alertmanager; a label that is absent matches as the empty string). The first rule whose
matchers all hold decides the SEV; no rule → ``default_sev``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StringConstraints, field_validator, model_validator

from aurora.config import _Strict, load_model
from aurora.durations import parse_duration
from aurora.home import Home

Sev = Literal["SEV1", "SEV2", "SEV3", "SEV4"]
SEVS: tuple[Sev, ...] = ("SEV1", "SEV2", "SEV3", "SEV4")
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class BusinessCalendar(_Strict):
    """Which days count for business-day SLAs (SEV4)."""

    timezone: str = "UTC"
    weekend: list[Weekday] = ["Sat", "Sun"]
    holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _some_business_day(self) -> BusinessCalendar:
        if len(set(self.weekend)) >= 7:
            raise ValueError("weekend covers the whole week: no business day left")
        return self

    def is_business_day(self, day: date) -> bool:
        return _WEEKDAYS[day.weekday()] not in self.weekend and day not in self.holidays

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """``start`` + ``days`` business days: the same wall-clock time ``days`` business days on.

        Precisely: in the calendar's time zone, a start that falls on a non-business day
        first moves to 00:00 of the next business day (the clock does not run over a
        weekend or holiday); then each business day moves to the same local time on the
        next business day. So Thu 10:00 → Fri 10:00, Fri 10:00 → Mon 10:00,
        Sat 10:00 → Tue 00:00. Equivalently: ``days`` × 24 h counted on business days only.
        """
        zone = ZoneInfo(self.timezone)
        local = start.astimezone(zone)
        if not self.is_business_day(local.date()):
            day = local.date()
            while not self.is_business_day(day):
                day += timedelta(days=1)
            local = datetime(day.year, day.month, day.day, tzinfo=zone)
        for _ in range(days):
            day = local.date() + timedelta(days=1)
            while not self.is_business_day(day):
                day += timedelta(days=1)
            # rebuild from the wall-clock fields so a DST change keeps the local time
            local = datetime.combine(day, local.time(), tzinfo=zone)
        return local.astimezone(start.tzinfo)


class SevLevel(_Strict):
    title: str
    response: str | None = Field(None, description="a duration, e.g. 15m")
    response_business_days: int | None = Field(None, ge=1, le=30)
    page: bool = False

    @field_validator("response")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= 0:
            raise ValueError("response must be a positive duration")
        return value

    @model_validator(mode="after")
    def _one_sla(self) -> SevLevel:
        if (self.response is None) == (self.response_business_days is None):
            raise ValueError("give exactly one of response (a duration) and "
                             "response_business_days")
        return self

    def sla_text(self) -> str:
        if self.response_business_days is not None:
            n = self.response_business_days
            return f"{n} business day{'s' if n != 1 else ''}"
        assert self.response is not None
        return self.response


LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]


class MappingRule(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    sev: Sev
    description: str = ""
    match: dict[LabelName, str] = {}
    match_re: dict[LabelName, str] = {}

    @field_validator("match_re")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{label}: bad regex: {exc}") from None
        return value

    @model_validator(mode="after")
    def _has_matchers(self) -> MappingRule:
        if not self.match and not self.match_re:
            raise ValueError(f"rule {self.name!r} has no matchers (use default_sev instead)")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k, "") != v for k, v in self.match.items()):
            return False
        return all(re.fullmatch(p, labels.get(k, "")) for k, p in self.match_re.items())


@dataclass(frozen=True)
class Classification:
    sev: Sev
    rule: str  # the rule's name, or "default"


class IncidentsConfig(_Strict):
    business_calendar: BusinessCalendar = BusinessCalendar()
    severities: dict[Sev, SevLevel]
    default_sev: Sev = "SEV3"
    rules: list[MappingRule] = []

    @field_validator("severities")
    @classmethod
    def _all_sevs(cls, value: dict[Sev, SevLevel]) -> dict[Sev, SevLevel]:
        missing = [s for s in SEVS if s not in value]
        if missing:
            raise ValueError(f"missing severities: {', '.join(missing)}")
        return value

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, value: list[MappingRule]) -> list[MappingRule]:
        names = [r.name for r in value]
        if len(set(names)) != len(names):
            raise ValueError("rule names must be unique")
        return value

    def classify(self, labels: Mapping[str, str]) -> Classification:
        for rule in self.rules:
            if rule.matches(labels):
                return Classification(rule.sev, rule.name)
        return Classification(self.default_sev, "default")

    def deadline(self, sev: Sev, opened_at: datetime) -> datetime:
        """When the first response to an incident of ``sev`` opened at ``opened_at`` is due."""
        level = self.severities[sev]
        if level.response_business_days is not None:
            return self.business_calendar.add_business_days(opened_at,
                                                            level.response_business_days)
        assert level.response is not None
        return opened_at + timedelta(seconds=parse_duration(level.response))


def load_incidents_config(home: Home) -> IncidentsConfig:
    return load_model(home.config_dir / "incidents.json", IncidentsConfig)
