"""``aurora canary run``: the rollout's controller, as a service of its own (``canary-controller``).

Every ``interval`` it judges the current step (``rollout.tick``: ledger comparisons,
Prometheus hard gates, HAProxy's measured split), records it in the ledger, and makes the
proxy follow the state: the next weight, promotion, or abort (weight 0, measured empty,
candidate stopped). Each measurement is also a metric on ``canary_metrics_port``, which
Prometheus scrapes; the canary alerts (aborted, inconclusive) go through Alertmanager
into incidents. The controller keeps serving its metrics for ``linger`` after the end so
the alert is seen, then exits.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from aurora import metricnames as names
from aurora.canary.analysis import Decision
from aurora.canary.evidence import weight_entry
from aurora.canary.live import Split
from aurora.canary.plan import Measurement, Phase, State
from aurora.canary.rollout import load, tick
from aurora.home import Home
from aurora.ledger.ledger import Ledger
from aurora.slo.promconfig import canary_targets_path, write_canary_target
from aurora.slo.prometheus import PrometheusClient
from aurora.treaty import load_treaty
from aurora.wire import rfc3339_at

log = logging.getLogger("aurora.canary")


class CanaryMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.weight = Gauge(names.CANARY_WEIGHT, "Percent of tenants on the candidate.",
                            ["rollout"], registry=r)
        self.phase = Gauge(names.CANARY_PHASE, "1 for the rollout's current phase.",
                           ["rollout", "phase"], registry=r)
        self.value = Gauge(names.CANARY_MEASUREMENT, "Latest value of each measurement.",
                           ["rollout", "comparison"], registry=r)
        self.threshold = Gauge(names.CANARY_THRESHOLD, "The threshold it is judged against.",
                               ["rollout", "comparison"], registry=r)
        self.samples = Gauge(names.CANARY_SAMPLE_SIZE, "Matched pairs behind it.",
                             ["rollout", "comparison"], registry=r)
        self.decision = Gauge(names.CANARY_DECISION, "1 for each comparison's latest decision.",
                              ["rollout", "comparison", "decision"], registry=r)
        self.served = Gauge(names.CANARY_SERVED, "Orders HAProxy served this step, by track.",
                            ["rollout", "track"], registry=r)

    def show(self, rollout: str, state: State, measurements: tuple[Measurement, ...],
             served: tuple[int, int]) -> None:
        self.weight.labels(rollout).set(state.weight)
        for phase in Phase:
            self.phase.labels(rollout, phase.value).set(1 if state.phase is phase else 0)
        for m in measurements:
            if m.value is not None:
                self.value.labels(rollout, m.comparison).set(m.value)
            self.threshold.labels(rollout, m.comparison).set(m.threshold)
            self.samples.labels(rollout, m.comparison).set(m.sample_size)
            for d in Decision:
                self.decision.labels(rollout, m.comparison, d.value).set(
                    1 if m.decision is d else 0)
        self.served.labels(rollout, "canary").set(served[0])
        self.served.labels(rollout, "stable").set(served[1])


def run(home: Home, rollout_id: str, *, interval_s: float, linger_s: float,
        quiet_s: float = 3.0) -> Phase:
    """Drive the rollout until it is promoted or aborted; the final phase."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per query is noise
    split = Split.of(home)
    metrics = CanaryMetrics()
    server, _ = start_http_server(split.stack.canary_metrics_port, addr=split.stack.bind,
                                  registry=metrics.registry)
    treaty_id = load_treaty(home).treaty_id
    targets = canary_targets_path(home)
    if targets.parent.is_dir():  # Prometheus runs (aurora up): it scrapes us from now on
        write_canary_target(targets, split.stack, running=True)
    try:
        with Ledger.open(home) as ledger, PrometheusClient(split.stack.prometheus_url) as prom:
            rollout = load(ledger, rollout_id)
            version = str(rollout.start["candidate"].get("version", "candidate"))
            base = split.served()  # counts are per step: from the step's first weight
            metrics.show(rollout_id, rollout.state, (), (0, 0))
            while not rollout.state.done:
                time.sleep(interval_s)
                rollout = load(ledger, rollout_id)  # an operator's abort is in the ledger
                if rollout.state.done:
                    break
                now = split.served()
                served = (now["canary"] - base["canary"], now["stable"] - base["stable"])
                before = rollout.state
                after, result = tick(ledger, prom, rollout, treaty_id=treaty_id, served=served)
                metrics.show(rollout_id, after, result.measurements, served)
                log.info("step %d %%: %s -> %s (%s)", before.weight, before.phase.value,
                         after.phase.value, after.reason)
                if after.phase is Phase.ABORTED:
                    break
                if after.weight != before.weight:
                    split.set_weight(after.weight)
                    base = split.served()
                if after.phase is Phase.PROMOTED:
                    split.promote(version)
                rollout = load(ledger, rollout_id)
            final = load(ledger, rollout_id).state
            if final.phase is Phase.ABORTED:
                counts = split.retire_canary(quiet_s=quiet_s)
                ledger.append(weight_entry(rollout_id, treaty_id, at=rfc3339_at(time.time()),
                                           weight=0, why=(
                    f"abort confirmed: no order reached the candidate for {quiet_s:g} s at "
                    f"weight 0 (HAProxy served canary {counts['canary']}, stable "
                    f"{counts['stable']} in all); candidate stopped")))
            metrics.show(rollout_id, final, (), (0, 0))
            log.info("rollout %s ended: %s (%s)", rollout_id, final.phase.value, final.reason)
        time.sleep(linger_s)
        return final.phase
    finally:
        if targets.parent.is_dir():
            write_canary_target(targets, split.stack, running=False)
        server.shutdown()
