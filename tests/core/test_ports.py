"""Free ports for isolated homes: no two services of one home are given the same port."""

from __future__ import annotations

import socket

from aurora.ports import free_ports
from aurora.soak.isolate import PORTS, own_ports


def _ranges(bases: list[int], sizes: tuple[int, ...]) -> list[range]:
    return [range(base, base + size) for base, size in zip(bases, sizes, strict=True)]


def test_runs_do_not_overlap_and_are_free() -> None:
    sizes = (1,) * 50 + (4, 12, 1, 8)
    ports = [p for r in _ranges(free_ports(*sizes), sizes) for p in r]
    assert len(ports) == len(set(ports)) == sum(sizes)
    for port in ports:  # free once handed out: every one can be bound
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_home_gets_distinct_ports_for_every_service_and_replica() -> None:
    # a replica's metrics port equal to Prometheus's made `aurora up --replicas 4` refuse
    # to start in one test run; it was chosen after Prometheus's port had been closed
    for _ in range(20):
        stack: dict[str, object] = {}
        own_ports(stack, replicas=4, split=12)
        singles = [stack[name] for name in PORTS]
        replica = int(str(stack["replica_metrics_port"]))
        split = int(str(stack["split_metrics_port"]))
        ports = [*singles, *range(replica, replica + 4), *range(split, split + 12)]
        assert len(ports) == len(set(ports))
