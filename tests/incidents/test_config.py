"""config/incidents.json: the SEV table, the alert → SEV mapping, business days."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from aurora.errors import ConfigError
from aurora.home import Home
from aurora.incidents.config import BusinessCalendar, IncidentsConfig, load_incidents_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> IncidentsConfig:
    return load_incidents_config(Home(REPO))


# (labels, SEV, rule): the mapping the runbook documents, row by row. The observatory's
# names first (ops/prometheus/rules/), then other names the rules are written to catch.
MAPPING = [
    ({"alertname": "TreatyFillRateLow", "severity": "critical", "slo": "fill"}, "SEV2",
     "fill-rate"),
    ({"alertname": "TreatyProvenanceLow", "severity": "critical", "slo": "provenance"}, "SEV2",
     "provenance"),
    ({"alertname": "TreatyRttP95High", "severity": "warning", "slo": "rtt"}, "SEV3", "latency"),
    ({"alertname": "PolicyLatencyP99High", "severity": "warning", "slo": "policy"}, "SEV3",
     "latency"),
    ({"alertname": "TreatyFillBudgetBurn", "severity": "critical", "long_window": "1h"}, "SEV2",
     "burn-rate-fast"),
    ({"alertname": "PolicyLatencyBudgetBurn", "severity": "warning", "long_window": "1d"},
     "SEV4", "burn-rate-slow"),
    ({"alertname": "TreatyNoTraffic", "severity": "warning"}, "SEV4", "warnings"),
    ({"alertname": "TreatyProvenanceCritical", "severity": "critical", "slo": "provenance"},
     "SEV1", "provenance-critical"),
    ({"alertname": "AuroraLedgerTampering", "severity": "critical", "slo": "ledger"}, "SEV1",
     "ledger-integrity"),
    ({"alertname": "AuroraIncidentSlaBreached", "severity": "critical", "sev": "SEV1"}, "SEV2",
     "sla-breach-major"),
    ({"alertname": "AuroraIncidentSlaBreached", "severity": "critical", "sev": "SEV2"}, "SEV2",
     "sla-breach-major"),
    ({"alertname": "AuroraIncidentSlaBreached", "severity": "critical", "sev": "SEV4"}, "SEV3",
     "sla-breach-minor"),
    ({"alertname": "AuroraLedgerTampered", "severity": "critical"}, "SEV1", "ledger-integrity"),
    ({"alertname": "RemembrancerIntegrityCheckFailed"}, "SEV1", "ledger-integrity"),
    ({"alertname": "AuroraProvenanceCritical", "severity": "critical"}, "SEV1",
     "provenance-critical"),
    ({"alertname": "AuroraFillRateErrorBudgetBurn", "severity": "ticket"}, "SEV4",
     "burn-rate-ticket"),
    ({"alertname": "AuroraRttErrorBudgetBurn", "severity": "warning"}, "SEV4",
     "burn-rate-slow"),
    ({"alertname": "AuroraFillRateErrorBudgetBurn", "severity": "page"}, "SEV2",
     "burn-rate-page"),
    ({"alertname": "AuroraRttBudgetBurnFast", "severity": "critical"}, "SEV2",
     "burn-rate-fast"),
    ({"alertname": "AuroraFillRateLow", "severity": "critical"}, "SEV2", "fill-rate"),
    ({"alertname": "AuroraFillRateLow", "severity": "warning"}, "SEV2", "fill-rate"),
    ({"alertname": "AuroraProvenanceLow", "severity": "critical"}, "SEV2", "provenance"),
    ({"alertname": "AuroraRttP95High", "severity": "warning"}, "SEV3", "latency"),
    ({"alertname": "AuroraPolicyLatencyP99High", "severity": "warning"}, "SEV3", "latency"),
    ({"alertname": "AuroraBridgeDown", "severity": "critical"}, "SEV2", "other-critical"),
    ({"alertname": "AuroraBackupStale", "severity": "warning"}, "SEV4", "warnings"),
    ({"alertname": "SomethingNew"}, "SEV3", "default"),
    ({"alertname": "SomethingNew", "severity": "none"}, "SEV3", "default"),
]


@pytest.mark.parametrize(("labels", "sev", "rule"), MAPPING,
                         ids=[f"{m[0]['alertname']}-{m[0].get('severity', '')}" for m in MAPPING])
def test_alert_to_sev_mapping(config: IncidentsConfig, labels: dict[str, str], sev: str,
                              rule: str) -> None:
    found = config.classify(labels)
    assert (found.sev, found.rule) == (sev, rule)


def _observatory_alerts() -> list[dict[str, str]]:
    """Every alerting rule's name and labels in ops/prometheus/rules/ (the observatory's)."""
    import yaml

    found = []
    for path in sorted((REPO / "ops" / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [{"alertname": rule["alert"], **rule.get("labels", {})}
                      for rule in group["rules"] if "alert" in rule]
    return found


# what each of the observatory's alerts must become; a new or renamed alert fails here
OBSERVATORY = {
    "AuroraCanaryAborted": {"SEV4"}, "AuroraCanaryInconclusive": {"SEV4"},
    "TreatyFillRateLow": {"SEV2"}, "TreatyProvenanceLow": {"SEV2"},
    "TreatyRttP95High": {"SEV3"}, "PolicyLatencyP99High": {"SEV3"},
    "TreatyFillBudgetBurn": {"SEV2", "SEV4"}, "TreatyRttBudgetBurn": {"SEV2", "SEV4"},
    "PolicyLatencyBudgetBurn": {"SEV2", "SEV4"}, "TreatyProvenanceBudgetBurn": {"SEV2", "SEV4"},
    "TreatyNoTraffic": {"SEV4"}, "AuroraTargetDown": {"SEV4"},
    "TreatyProvenanceCritical": {"SEV1"}, "AuroraLedgerTampering": {"SEV1"},
    "AuroraIncidentSlaBreached": {"SEV2", "SEV3"},  # by the breached incident's `sev` label
}


def test_the_observatory_alerts_map_as_documented(config: IncidentsConfig) -> None:
    alerts = _observatory_alerts()
    if not alerts:
        pytest.skip("no alert rules in ops/prometheus/rules/ yet")
    seen: dict[str, set[str]] = {}
    # the SLA-breach alert carries the breached incident's SEV from its series
    alerts += [{**a, "sev": sev} for a in alerts if a["alertname"] == "AuroraIncidentSlaBreached"
               for sev in ("SEV1", "SEV2", "SEV3", "SEV4")]
    for labels in alerts:
        found = config.classify(labels)
        assert found.rule != "default", f"{labels['alertname']} is not mapped explicitly"
        # burn-rate pages are SEV2, their slow-burn tickets SEV4
        if labels["alertname"].endswith("BudgetBurn"):
            assert found.sev == ("SEV2" if labels["severity"] == "critical" else "SEV4")
        seen.setdefault(labels["alertname"], set()).add(found.sev)
    assert seen == OBSERVATORY


def test_regexes_are_anchored_like_alertmanager(config: IncidentsConfig) -> None:
    # "warnings" matches severity=~"warning|info" as a whole, not "prewarning"
    assert config.classify({"alertname": "X", "severity": "prewarning"}).rule == "default"


def test_every_rule_is_reachable(config: IncidentsConfig) -> None:
    assert {rule for _, _, rule in MAPPING} >= {r.name for r in config.rules}


@pytest.mark.parametrize(("sev", "response"), [
    ("SEV1", timedelta(minutes=15)), ("SEV2", timedelta(hours=1)), ("SEV3", timedelta(hours=4)),
])
def test_sla_durations(config: IncidentsConfig, sev: str, response: timedelta) -> None:
    opened = datetime(2026, 11, 28, 23, 50, tzinfo=UTC)  # a Saturday: clock SLAs ignore it
    assert config.deadline(sev, opened) == opened + response  # type: ignore[arg-type]


@pytest.mark.parametrize(("opened", "due"), [
    ("2026-11-26T10:00:00", "2026-11-27T10:00:00"),  # Thu → Fri, same time
    ("2026-11-27T10:00:00", "2026-11-30T10:00:00"),  # Fri → Mon, weekend skipped
    ("2026-11-27T23:59:00", "2026-11-30T23:59:00"),  # Fri late → Mon late
    ("2026-11-28T10:00:00", "2026-12-01T00:00:00"),  # Sat: clock starts Mon 00:00 → Tue 00:00
    ("2026-11-29T23:00:00", "2026-12-01T00:00:00"),  # Sun: the same
    ("2026-11-30T00:00:00", "2026-12-01T00:00:00"),  # Mon 00:00 → Tue 00:00
])
def test_sev4_is_one_business_day(config: IncidentsConfig, opened: str, due: str) -> None:
    start = datetime.fromisoformat(opened).replace(tzinfo=UTC)
    assert config.deadline("SEV4", start) == datetime.fromisoformat(due).replace(tzinfo=UTC)


def test_holidays_and_time_zones() -> None:
    calendar = BusinessCalendar(timezone="Europe/Berlin", holidays=[date(2026, 12, 25)])
    # Thu 24 Dec 10:00 Berlin (09:00Z) → Fri 25 is a holiday → Mon 28 Dec 10:00 Berlin
    start = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)
    assert calendar.add_business_days(start, 1) == datetime(2026, 12, 28, 9, 0, tzinfo=UTC)
    # across the end of summer time the local time is kept: Fri 23 Oct 10:00 CEST (08:00Z)
    # → Mon 26 Oct 10:00 CET (09:00Z)
    start = datetime(2026, 10, 23, 8, 0, tzinfo=UTC)
    assert calendar.add_business_days(start, 1) == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)


def _write(home: Path, document: object) -> Home:
    (home / "config" / "incidents.json").write_text(json.dumps(document))
    return Home(home)


def _base(home: Path) -> dict:
    return json.loads((home / "config" / "incidents.json").read_text())


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["severities"].pop("SEV3"), "missing severities: SEV3"),
    (lambda d: d["severities"]["SEV1"].update(response="soon"), "not a duration"),
    (lambda d: d["severities"]["SEV4"].update(response="1h"), "exactly one of"),
    (lambda d: d["rules"].append({"name": "x", "sev": "SEV9", "match": {"a": "b"}}), "sev"),
    (lambda d: d["rules"].append({"name": "x", "sev": "SEV1", "match_re": {"a": "("}}),
     "bad regex"),
    (lambda d: d["rules"].append({"name": "x", "sev": "SEV1"}), "no matchers"),
    (lambda d: d["rules"].append(dict(d["rules"][0])), "unique"),
    (lambda d: d["business_calendar"].update(timezone="Mars/Olympus"), "unknown time zone"),
    (lambda d: d.update(extra=1), "extra"),
])
def test_bad_config_is_one_line_naming_the_file(home: Path, change, message: str) -> None:
    document = _base(home)
    change(document)
    with pytest.raises(ConfigError) as caught:
        load_incidents_config(_write(home, document))
    text = str(caught.value)
    assert "incidents.json" in text
    assert message.lower() in text.lower()
    assert "\n" not in text


def test_missing_config_file(home: Path) -> None:
    (home / "config" / "incidents.json").unlink()
    with pytest.raises(ConfigError, match="incidents.json: file is missing"):
        load_incidents_config(Home(home))
